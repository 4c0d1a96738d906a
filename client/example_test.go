package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/simgate/simgate/client"
	"github.com/simgate/simgate/otp"
)

// An auth service sends a login code and tells the user at once whether it
// is on its way.
func Example() {
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	reply, err := c.Request(ctx, otp.Job{
		ID:     "login-7f3a", // the idempotency key: retrying with it never sends twice
		To:     "+45 26 22 79 21",
		Code:   "034812",
		Origin: "example.com",
	})
	if err != nil {
		log.Fatal(err) // simgate unreachable: fall back or retry
	}
	switch reply.Status {
	case otp.ReplyRejected:
		fmt.Printf("refused: %s, try again in %.0f s\n", reply.Reason, reply.RetryAfter)
		return
	case otp.ReplyError:
		fmt.Println("try again")
		return
	}
	fmt.Println("code sent to", reply.To)

	// Later, or in another process: what became of it?
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	final, err := c.Wait(ctx, reply.Follow())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("final state:", final.Type, final.Reason)
}

// An auth service lets simgate make, send and check the code: it never
// sees the code, only whether the one the user typed is right.
func ExampleClient_Verify() {
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	reply, err := c.Verify(ctx, otp.VerifyRequest{
		ID:     "login-7f3a", // the idempotency key, and the verification's id
		To:     "+45 26 22 79 21",
		Origin: "example.com",
	})
	if err != nil {
		log.Fatal(err) // simgate unreachable: fall back or retry
	}
	switch reply.Status {
	case otp.ReplyRejected:
		fmt.Printf("refused: %s, try again in %.0f s\n", reply.Reason, reply.RetryAfter)
		return
	case otp.ReplyError:
		fmt.Println("try again")
		return
	}
	fmt.Println("code sent to", reply.To)

	// Later, when the user has typed the code in: check it by the
	// verification the SMS belongs to (a resend names an earlier one).
	typed := "034812"
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := c.Check(ctx, otp.CheckRequest{ID: reply.Verification, Code: typed})
	if err != nil {
		log.Fatal(err)
	}
	switch answer.Status {
	case otp.CheckApproved:
		fmt.Println("logged in")
	case otp.CheckDenied:
		fmt.Println("wrong code,", answer.AttemptsLeft, "more tries")
	default: // expired, locked, not_found, rejected, error
		fmt.Println("not logged in:", answer.Status, answer.Reason)
	}
}
