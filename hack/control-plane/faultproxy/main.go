// Command faultproxy forwards TCP connections from a loopback port to an
// upstream address (the e2e kube-apiserver) and, on request, injects the
// network faults an operator must survive:
//
//   - partition: the peer stops answering. Bytes already read are held, no
//     more bytes are read (so kernel buffers fill and the sender stalls, as
//     with a peer that no longer ACKs), and new connections are accepted but
//     not forwarded, so their TLS handshake hangs. Nothing is refused or
//     reset: the client sees exactly what a network partition shows it,
//     silence. Connections that live through the partition resume where they
//     stopped after heal, like TCP retransmission after a partition heals.
//   - heal: forwarding resumes; held bytes are delivered, held connections
//     are connected upstream.
//   - drop: every open connection is reset (RST) at once, as when a load
//     balancer or conntrack forgets them; new connections work.
//
// TLS is end to end (the proxy only moves bytes): the API server's certificate
// names 127.0.0.1, so a kubeconfig that only changes the port still verifies.
//
// Control is plain HTTP on a Unix socket (-control): GET /status, POST
// /partition, POST /heal, POST /drop. Each answers after the change took
// effect, with the status as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proxy holds the fault state shared by every connection.
type proxy struct {
	upstream string

	mu          sync.Mutex
	partitioned bool
	// healed is closed whenever the proxy is not partitioned; a new channel
	// replaces it when a partition starts, and pumps wait on it.
	healed   chan struct{}
	conns    map[*pair]struct{}
	accepted uint64
	dropped  uint64
	since    time.Time
}

// pair is one client connection and its upstream connection.
type pair struct {
	client *net.TCPConn
	done   chan struct{}

	mu       sync.Mutex
	upstream *net.TCPConn // nil while the connection is held by a partition
	closed   bool
}

func newProxy(upstream string) *proxy {
	healed := make(chan struct{})
	close(healed)
	return &proxy{upstream: upstream, healed: healed, conns: map[*pair]struct{}{}, since: time.Now()}
}

// gate returns a channel that is closed when traffic may flow.
func (p *proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healed
}

// wait blocks until traffic may flow or the pair is closed; false if closed.
func (p *proxy) wait(c *pair) bool {
	select {
	case <-p.gate():
		return true
	case <-c.done:
		return false
	}
}

func (p *proxy) setPartitioned(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.partitioned {
		return
	}
	p.partitioned = on
	p.since = time.Now()
	if on {
		p.healed = make(chan struct{})
	} else {
		close(p.healed)
	}
	log.Printf("partitioned=%v (%d open connections)", on, len(p.conns))
}

// close resets both sides (SO_LINGER 0 sends RST instead of FIN).
func (c *pair) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	conns := []*net.TCPConn{c.client, c.upstream}
	c.mu.Unlock()
	for _, conn := range conns {
		if conn != nil {
			_ = conn.SetLinger(0)
			_ = conn.Close()
		}
	}
}

// attach records the upstream connection unless the pair was closed meanwhile.
func (c *pair) attach(up *net.TCPConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.upstream = up
	return true
}

func (p *proxy) drop() int {
	p.mu.Lock()
	victims := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		victims = append(victims, c)
	}
	p.dropped += uint64(len(victims))
	p.mu.Unlock()
	for _, c := range victims {
		c.close()
	}
	log.Printf("dropped %d connections", len(victims))
	return len(victims)
}

func (p *proxy) forget(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) serve(client *net.TCPConn) {
	c := &pair{client: client, done: make(chan struct{})}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.accepted++
	p.mu.Unlock()
	defer p.forget(c)
	defer c.close()

	// A connection opened during a partition is held here: accepted, never
	// forwarded, so the client's TLS handshake waits as for a silent peer.
	if !p.wait(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		// Upstream down (e.g. the API server is restarting): reset the client
		// so it fails fast, as the refused connection it would have seen.
		return
	}
	upstream := up.(*net.TCPConn)
	if !c.attach(upstream) { // dropped while dialing
		_ = upstream.Close()
		return
	}

	finished := make(chan struct{}, 2)
	go func() { p.pump(c, upstream, c.client); finished <- struct{}{} }()
	go func() { p.pump(c, c.client, upstream); finished <- struct{}{} }()
	<-finished
	<-finished
}

// pump copies src to dst, holding each chunk while the proxy is partitioned.
// On EOF it half-closes dst (the other direction may still be talking); on an
// error both connections are reset.
func (p *proxy) pump(c *pair, dst, src *net.TCPConn) {
	buf := make([]byte, 32*1024)
	for {
		if !p.wait(c) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(c) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.close()
				return
			}
		}
		if errors.Is(err, io.EOF) {
			_ = dst.CloseWrite()
			return
		}
		if err != nil {
			c.close()
			return
		}
	}
}

type status struct {
	Listen      string  `json:"listen"`
	Upstream    string  `json:"upstream"`
	Partitioned bool    `json:"partitioned"`
	Open        int     `json:"open"`
	Accepted    uint64  `json:"accepted"`
	Dropped     uint64  `json:"dropped"`
	ForSeconds  float64 `json:"for_seconds"`
}

func (p *proxy) status(listen string) status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return status{
		Listen: listen, Upstream: p.upstream, Partitioned: p.partitioned, Open: len(p.conns),
		Accepted: p.accepted, Dropped: p.dropped, ForSeconds: time.Since(p.since).Seconds(),
	}
}

func controlHandler(p *proxy, listen string) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.status(listen))
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { reply(w) })
	mux.HandleFunc("POST /partition", func(w http.ResponseWriter, _ *http.Request) { p.setPartitioned(true); reply(w) })
	mux.HandleFunc("POST /heal", func(w http.ResponseWriter, _ *http.Request) { p.setPartitioned(false); reply(w) })
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, _ *http.Request) { p.drop(); reply(w) })
	return mux
}

func main() {
	listenAddr := flag.String("listen", "127.0.0.1:0", "address to accept client connections on")
	upstream := flag.String("upstream", "", "address to forward to, e.g. 127.0.0.1:6443")
	control := flag.String("control", "", "Unix socket for the control API")
	portFile := flag.String("port-file", "", "write the listening port here once ready")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	if *upstream == "" || *control == "" {
		log.Fatal("-upstream and -control are required")
	}

	ln, err := net.Listen("tcp", *listenAddr)
	if err != nil {
		log.Fatalf("listen %s: %v", *listenAddr, err)
	}
	_ = os.Remove(*control)
	ctl, err := net.Listen("unix", *control)
	if err != nil {
		log.Fatalf("control socket %s: %v", *control, err)
	}
	p := newProxy(*upstream)
	listen := ln.Addr().String()
	srv := &http.Server{Handler: controlHandler(p, listen), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ctl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("control API: %v", err)
		}
	}()
	if *portFile != "" {
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		tmp := *portFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(port+"\n"), 0o644); err != nil {
			log.Fatalf("port file: %v", err)
		}
		if err := os.Rename(tmp, *portFile); err != nil {
			log.Fatalf("port file: %v", err)
		}
	}
	log.Printf("forwarding %s -> %s, control on %s", listen, *upstream, *control)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Printf("accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go p.serve(conn.(*net.TCPConn))
	}
	n := p.drop()
	_ = srv.Close()
	_ = os.Remove(*control)
	fmt.Fprintf(os.Stderr, "stopped, reset %d connections\n", n)
}
