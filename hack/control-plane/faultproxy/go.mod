// A loopback TCP proxy for fault injection (partitions, dropped connections)
// between a client under test and the e2e kube-apiserver. Standard library
// only, in its own module so that building it needs nothing from the
// Kubernetes module graph of the parent directory.
module gatehouse.dev/hack/control-plane/faultproxy

go 1.22
