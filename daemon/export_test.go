package daemon

// WithDiskSpace has the daemon read the store's free and total space with
// f instead of statfs (tests fill the disk without filling it).
func WithDiskSpace(f func(path string) (free, size uint64, err error)) Option {
	return func(o *options) { o.space = f }
}
