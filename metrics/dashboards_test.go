package metrics

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// The Grafana dashboard and the alerting rules ops run against these
// metrics. The tests keep them true when a metric is renamed or dropped.
const (
	dashboardFile = "../configs/grafana/simgate.json"
	alertsFile    = "../configs/prometheus/alerts.yml"
)

var metricName = regexp.MustCompile(`simgate_[a-z_]+`)

// describedRegistry records the descriptors of what is registered, so
// that a vector without series yet still counts as existing.
type describedRegistry struct {
	*prometheus.Registry
	descs []*prometheus.Desc
}

func (r *describedRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return r.Registry.Register(c)
}

func (r *describedRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedNames returns the names of every metric simgate exports.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := &describedRegistry{Registry: NewRegistry()}
	New(reg, "test", []string{"m1"})
	reg.MustRegister(NewQueueCollector(func(context.Context) (QueueState, error) {
		return QueueState{Pending: 1, InFlight: 1, Redelivered: 1}, nil
	}, time.Second))
	reg.MustRegister(NewDiskCollector(func() (DiskUsage, error) { return DiskUsage{Free: 1, Size: 2, JetStreamBytes: 1}, nil }))
	reg.MustRegister(NewStoreCollector(func(context.Context) ([]StoreUsage, error) {
		return []StoreUsage{{Name: "OTP_JOBS", Bytes: 1, Messages: 1, MaxBytes: 2}}, nil
	}, time.Second))
	names := map[string]bool{}
	for _, d := range reg.descs {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	if !names["simgate_modem_signal_dbm"] || !names["simgate_queue_up"] {
		t.Fatalf("cannot read metric names from descriptors (%d found): has Desc.String changed?", len(names))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

// checkNames reports every simgate_ name in used (name → where) that
// the registry does not export. Histogram series are named after their
// histogram.
func checkNames(t *testing.T, file string, used map[string][]string) {
	t.Helper()
	if len(used) == 0 {
		t.Errorf("%s: no simgate_ metric found", file)
		return
	}
	exported := exportedNames(t)
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("%s: %s is not a simgate metric (used in %s)", file, n, strings.Join(used[n], "; "))
		}
	}
}

func collectNames(used map[string][]string, where, s string) {
	for _, n := range metricName.FindAllString(s, -1) {
		if !slices.Contains(used[n], where) {
			used[n] = append(used[n], where)
		}
	}
}

type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) (dashboard, any) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return d, raw
}

// datasources calls f with the path and value of every "datasource" key
// in v.
func datasources(v any, path string, f func(path string, ds any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "datasource" {
				f(path, e)
				continue
			}
			datasources(e, path+"."+k, f)
		}
	case []any:
		for i, e := range v {
			datasources(e, path+"["+strconv.Itoa(i)+"]", f)
		}
	}
}

func TestDashboard(t *testing.T) {
	d, raw := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a Grafana 10/11 dashboard", d.SchemaVersion)
	}

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			var q string
			json.Unmarshal(v.Query, &q)
			if v.Type != "datasource" || q != "prometheus" {
				t.Errorf("variable datasource: type %q, query %s; want a prometheus datasource variable", v.Type, v.Query)
			}
		case "instance", "modem":
			if v.Type != "query" || !v.Multi || !v.IncludeAll {
				t.Errorf("variable %s: type %q, multi %v, includeAll %v; want a multi-value query variable with All", v.Name, v.Type, v.Multi, v.IncludeAll)
			}
		}
	}
	for _, n := range []string{"datasource", "instance", "modem"} {
		if !vars[n] {
			t.Errorf("no template variable %s", n)
		}
	}

	// Provisioned anywhere: the only datasource is the variable.
	n := 0
	datasources(raw, "", func(path string, ds any) {
		n++
		uid := ds
		if m, ok := ds.(map[string]any); ok {
			uid = m["uid"]
		}
		if uid != "${datasource}" {
			t.Errorf("%s: datasource %v; want uid ${datasource}", path, ds)
		}
	})
	if n == 0 {
		t.Error("no panel names a datasource")
	}

	var panels []panel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]string{}
	used := map[string][]string{}
	for _, p := range panels {
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			collectNames(used, "panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		collectNames(used, "variable "+v.Name, string(v.Query))
	}

	// Top-level panels (rows and those of expanded rows) tile the grid.
	for i, p := range d.Panels {
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range d.Panels[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", q.Title, p.Title)
			}
		}
	}

	checkNames(t, dashboardFile, used)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlerts(t *testing.T) {
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	used := map[string][]string{}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			if r.Alert != "" {
				if alerts[r.Alert] {
					t.Errorf("alert %s defined twice", r.Alert)
				}
				alerts[r.Alert] = true
				if r.For == "" {
					t.Errorf("alert %s has no for", r.Alert)
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("alert %s needs a summary and a description", r.Alert)
				}
			}
			collectNames(used, name, r.Expr)
			for _, a := range r.Annotations {
				collectNames(used, name, a)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alert", alertsFile)
	}
	checkNames(t, alertsFile, used)
}
