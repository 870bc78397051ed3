package agent

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"vxswitch/api"
	"vxswitch/esp"
	"vxswitch/espconn"
	"vxswitch/raftstore"
)

// Keys of encrypted networks (issue 15).
//
// Each host holds an X25519 key pair in memory only and publishes the
// public key in its host record (host.key). For every pair of hosts A and
// B, both derive the SA A->B and the SA B->A from A's and B's current keys
// (esp.DeriveConfig): per host pair keys, nothing secret replicated, and a
// removed host never held the keys of any other pair, so removing a host
// needs no rotation: the others drop their SAs with it when the removal
// applies, and stop sending to it.
//
// A host rotates by publishing a new key with an activation time a few
// seconds ahead (keyActivation): every host that applies it derives the
// pair's new SAs at once and accepts both the old and the new inbound SA;
// both ends switch to sending with the new SA at the activation time, and
// the old inbound SA goes keyOverlap later. A host rotates every
// Config.KeyRotation, when an outbound SA has sent 2^31 packets (an SA
// without extended sequence numbers ends at 2^32-1), and at every start
// (the private key of the last run is gone: its SAs stop at once).
//
// SPIs are deterministic: the SA from S to R has SPI
// S.Index<<12 | (S.Epoch+R.Epoch)&0xfff, unique among R's inbound SAs
// (one index per sender; the epoch sum grows with every new key of either
// end, and at most two generations of one pair live at once).

// Timing of a key rotation.
const (
	// keyActivation is how long after publishing a new key its SAs become
	// the ones hosts send with: time for every host to apply it.
	keyActivation = 5 * time.Second
	// keyOverlap is how long after the activation the old inbound SA still
	// accepts packets (those in flight and from slow clocks).
	keyOverlap = 30 * time.Second
	// keyRotateSent is how many packets an outbound SA sends before its
	// host rotates.
	keyRotateSent = 1 << 31
	// keyTick is how often the key manager checks activations and
	// retirements.
	keyTick = 250 * time.Millisecond
)

// espSPI returns the SPI of the SA from the host with key index senderIndex
// for the pair generation gen (the sum of both hosts' key epochs).
func espSPI(senderIndex, gen uint32) uint32 {
	return senderIndex<<12 | gen&0xfff
}

// keyGen is one generation of the SAs of a host pair: from one key of each.
type keyGen struct {
	myPub, peerPub string // the raw public keys it was derived from
	in, out        *esp.SA
	activeAt       time.Time
	retireAt       time.Time // zero while it is the newest
}

// peerKeys are the generations of the SAs with one peer host, oldest
// first.
type peerKeys struct {
	addr netip.Addr
	gens []*keyGen
}

// keyManager keeps the inbound table and the outbound policy of an
// espconn.Conn in line with the replicated state and the clock. Its
// methods may be called from any goroutine.
type keyManager struct {
	conn     *espconn.Conn
	self     string
	rotation time.Duration
	log      *slog.Logger
	// publish commits a host.key command; it is called without mu held.
	publish func(ctx context.Context, k raftstore.HostKey) error

	mu          sync.Mutex
	privs       map[string]*ecdh.PrivateKey // by raw public key
	pending     bool                        // a publish is under way
	latest      string                      // the raw public key made last
	publishedAt time.Time                   // when the current key was made; zero before the first
	lastTry     time.Time
	rotateNow   bool
	peers       map[string]*peerKeys
	// static is the host's static key (loadStaticKey), nil in tests that
	// have none; set before run and never changed. ext are the SAs with
	// external VTEPs derived from it, by peer address.
	static *ecdh.PrivateKey
	ext    map[netip.Addr]*extPeer
	// seq keeps the sequence numbers of the outbound SAs with external
	// VTEPs unique across restarts (their keys do not change, and the
	// sequence number is the AES-GCM IV); nil when static is.
	seq *seqFloor
}

// seqBlock is how many sequence numbers a host reserves on disk at a time
// for its SAs with external VTEPs: a restart skips at most this many, and
// the reservation grows at a keyTick when half of it is used (2^19
// packets in 250 ms is far beyond one peer's rate).
const seqBlock = 1 << 20

// seqFloor is the on-disk reservation of the sequence numbers of the SAs
// with external VTEPs: every SA starts after base, the number the file
// held at start, and sends up to top, what the file holds now. Used with
// keyManager.mu held.
type seqFloor struct {
	path      string
	base, top uint64
}

// loadSeqFloor reads the reservation at path (0 if the file does not
// exist) and reserves the first block of this run.
func loadSeqFloor(path string) (*seqFloor, error) {
	f := &seqFloor{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("agent: read ESP sequence floor: %w", err)
	default:
		if f.base, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return nil, fmt.Errorf("agent: ESP sequence floor %s is not a number: remove it and rerun 'vtep xfrm' for kernel peers (their SAs need new keys)", path)
		}
	}
	f.top = f.base
	return f, f.grow()
}

// grow reserves one more block: it writes the new top and syncs it to
// disk before any SA may use it.
func (f *seqFloor) grow() error {
	top := f.top + seqBlock
	tmp := f.path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("agent: reserve ESP sequence numbers: %w", err)
	}
	_, err = fmt.Fprintf(fh, "%d\n", top)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		return fmt.Errorf("agent: reserve ESP sequence numbers: %w", err)
	}
	f.top = top
	return nil
}

// extPeer is the pair of SAs with one external (kernel) VTEP and the peer
// key they come from.
type extPeer struct {
	pub     string // hex, as in raftstore.VTEP.ESP
	in, out *esp.SA
}

func newKeyManager(conn *espconn.Conn, self string, rotation time.Duration, log *slog.Logger,
	publish func(context.Context, raftstore.HostKey) error) *keyManager {
	return &keyManager{
		conn: conn, self: self, rotation: rotation, log: log, publish: publish,
		privs: map[string]*ecdh.PrivateKey{}, peers: map[string]*peerKeys{},
		ext: map[netip.Addr]*extPeer{},
	}
}

// sync brings the SAs in line with st at time now and tells whether a new
// key should be published.
func (m *keyManager) sync(st *raftstore.State, now time.Time) (publish bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	me := st.Hosts[m.self]
	var myPriv *ecdh.PrivateKey
	if me.ESP != nil {
		myPriv = m.privs[string(me.ESP.Public)]
	}
	for name, h := range st.Hosts {
		if name == m.self || myPriv == nil || h.ESP == nil || !h.VTEP.IsValid() {
			continue
		}
		p := m.peers[name]
		if p == nil {
			p = &peerKeys{}
			m.peers[name] = p
		}
		var last *keyGen
		if len(p.gens) > 0 {
			last = p.gens[len(p.gens)-1]
		}
		if last != nil && last.myPub == string(me.ESP.Public) && last.peerPub == string(h.ESP.Public) && p.addr == h.VTEP {
			continue
		}
		g, err := m.derive(myPriv, me, h)
		if err != nil {
			m.log.Warn("cannot derive ESP SAs", "peer", name, "err", err)
			continue
		}
		if p.addr != h.VTEP {
			// A host that moved: its old SAs name the old address.
			m.dropPeer(p)
			p.addr, last = h.VTEP, nil
		}
		if old := m.conn.In.Lookup(g.in.SPI()); old != nil {
			m.removeSPI(p, old.SPI())
		}
		if err := m.conn.In.Add(g.in); err != nil {
			m.log.Warn("cannot add ESP SA", "peer", name, "err", err)
			continue
		}
		if last != nil && last.retireAt.IsZero() {
			last.retireAt = g.activeAt.Add(keyOverlap)
		}
		p.gens = append(p.gens, g)
	}
	// Peers that left, or lost their key, lose their SAs now.
	for name, p := range m.peers {
		if h, ok := st.Hosts[name]; !ok || h.ESP == nil {
			m.dropPeer(p)
			delete(m.peers, name)
		}
	}
	pol := &espconn.Policy{Encrypted: map[uint32]bool{}, Out: map[netip.Addr]*esp.SA{}}
	for _, n := range st.Networks {
		if n.Encrypted {
			pol.Encrypted[n.VNI] = true
		}
	}
	used := map[string]bool{m.latest: true}
	if me.ESP != nil {
		used[string(me.ESP.Public)] = true
	}
	for _, p := range m.peers {
		kept := p.gens[:0]
		for _, g := range p.gens {
			if !g.retireAt.IsZero() && !now.Before(g.retireAt) {
				m.conn.In.Remove(g.in.SPI())
				continue
			}
			kept = append(kept, g)
			used[g.myPub] = true
		}
		p.gens = kept
		if out := sendGen(p.gens, now); out != nil {
			pol.Out[p.addr] = out.out
			if out.out.Sent() >= keyRotateSent {
				m.rotateNow = true
			}
		}
	}
	m.syncExternal(st, me, pol)
	m.conn.SetPolicy(pol)
	for pub := range m.privs {
		if !used[pub] {
			delete(m.privs, pub)
		}
	}
	if _, member := st.Hosts[m.self]; !member || m.pending || now.Sub(m.lastTry) < time.Second {
		return false
	}
	staleStatic := m.static != nil && me.ESPStatic != hex.EncodeToString(m.static.PublicKey().Bytes())
	return m.publishedAt.IsZero() || now.Sub(m.publishedAt) >= m.rotation || m.rotateNow || myPriv == nil || staleStatic
}

// syncExternal keeps the SAs with the external VTEPs that have a key
// ('vtep xfrm') in line with st and adds their outbound SAs to pol; m.mu
// is held. An address in several encrypted networks uses the key of its
// first record that has one.
func (m *keyManager) syncExternal(st *raftstore.State, me raftstore.Host, pol *espconn.Policy) {
	want := map[netip.Addr]string{}
	if m.static != nil && m.seq != nil && me.ESP != nil && me.VTEP.IsValid() {
		for _, v := range st.VTEPs {
			if _, ok := want[v.Addr]; !ok && v.ESP != "" && st.Networks[v.Network].Encrypted {
				want[v.Addr] = v.ESP
			}
		}
	}
	for addr, e := range m.ext {
		if want[addr] != e.pub {
			m.conn.In.Remove(e.in.SPI())
			delete(m.ext, addr)
		}
	}
	grow := false
	for _, e := range m.ext {
		grow = grow || e.out.Sent() > m.seq.top-seqBlock/2
	}
	if grow {
		if err := m.seq.grow(); err != nil {
			m.log.Warn("SAs with external VTEPs stop at their reservation", "err", err)
		}
		for _, e := range m.ext {
			e.out.SetLimit(m.seq.top)
		}
	}
	for addr, pub := range want {
		if m.ext[addr] == nil {
			e, err := m.deriveExternal(me, addr, pub)
			if err != nil {
				m.log.Warn("cannot derive ESP SAs with an external VTEP", "vtep", addr, "err", err)
				continue
			}
			m.ext[addr] = e
		}
		pol.Out[addr] = m.ext[addr].out
	}
}

// deriveExternal makes and installs the SAs with the external VTEP at addr
// whose hex public key is pub; m.mu is held.
func (m *keyManager) deriveExternal(me raftstore.Host, addr netip.Addr, pub string) (*extPeer, error) {
	peer := (raftstore.VTEP{ESP: pub}).ESPKey()
	outCfg, inCfg, err := esp.ExternalSAs(m.static,
		esp.Host{Addr: me.VTEP, Key: m.static.PublicKey()}, esp.Host{Addr: addr, Key: peer}, me.ESP.Index)
	if err != nil {
		return nil, err
	}
	in, out, err := newSAPair(inCfg, outCfg)
	if err != nil {
		return nil, err
	}
	out.StartAfter(m.seq.base)
	out.SetLimit(m.seq.top)
	if err := m.conn.In.Add(in); err != nil {
		return nil, err
	}
	return &extPeer{pub: pub, in: in, out: out}, nil
}

// newSAPair makes the inbound and outbound SAs of one host pair.
func newSAPair(inCfg, outCfg esp.Config) (in, out *esp.SA, err error) {
	if in, err = esp.NewSA(inCfg); err != nil {
		return nil, nil, err
	}
	if out, err = esp.NewSA(outCfg); err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// loadStaticKey reads the host's static X25519 key from path, or makes one
// and writes it there (mode 0600) if the file does not exist.
func loadStaticKey(path string) (*ecdh.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("agent: make static ESP key: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k.Bytes())+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("agent: write static ESP key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: read static ESP key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err == nil {
		var k *ecdh.PrivateKey
		if k, err = ecdh.X25519().NewPrivateKey(raw); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("agent: static ESP key %s is not 64 hex digits: remove it to make a new one (and rerun 'vtep xfrm' for kernel peers)", path)
}

// sendGen returns the generation to send with at now: the newest one whose
// activation time has come, or the oldest one if none has.
func sendGen(gens []*keyGen, now time.Time) *keyGen {
	for i := len(gens) - 1; i >= 0; i-- {
		if !now.Before(gens[i].activeAt) {
			return gens[i]
		}
	}
	if len(gens) > 0 {
		return gens[0]
	}
	return nil
}

// derive makes the SAs of the pair (me, peer) from their current keys.
func (m *keyManager) derive(myPriv *ecdh.PrivateKey, me, peer raftstore.Host) (*keyGen, error) {
	self := esp.Host{Addr: me.VTEP, Key: myPriv.PublicKey()}
	other := esp.Host{Addr: peer.VTEP, Key: peer.ESPPublicKey()}
	if other.Key == nil {
		return nil, fmt.Errorf("host %s has an invalid ESP public key", peer.Name)
	}
	gen := me.ESP.Epoch + peer.ESP.Epoch
	inCfg, err := esp.DeriveConfig(myPriv, other, self, espSPI(peer.ESP.Index, gen))
	if err != nil {
		return nil, err
	}
	outCfg, err := esp.DeriveConfig(myPriv, self, other, espSPI(me.ESP.Index, gen))
	if err != nil {
		return nil, err
	}
	in, out, err := newSAPair(inCfg, outCfg)
	if err != nil {
		return nil, err
	}
	activeAt := max(me.ESP.ActiveAt, peer.ESP.ActiveAt)
	return &keyGen{
		myPub: string(me.ESP.Public), peerPub: string(peer.ESP.Public),
		in: in, out: out, activeAt: time.Unix(0, activeAt),
	}, nil
}

// dropPeer removes every inbound SA of p; m.mu is held.
func (m *keyManager) dropPeer(p *peerKeys) {
	for _, g := range p.gens {
		m.conn.In.Remove(g.in.SPI())
	}
	p.gens = nil
}

// removeSPI removes the generation of p whose inbound SA has spi; m.mu is
// held.
func (m *keyManager) removeSPI(p *peerKeys, spi uint32) {
	m.conn.In.Remove(spi)
	kept := p.gens[:0]
	for _, g := range p.gens {
		if g.in.SPI() != spi {
			kept = append(kept, g)
		}
	}
	p.gens = kept
}

// newKey makes a key pair, remembers its private half and returns the
// HostKey to publish: active at once for the first key of this process
// (the last run's SAs are gone with its private key), keyActivation from
// now for a rotation.
func (m *keyManager) newKey(now time.Time) (raftstore.HostKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return raftstore.HostKey{}, fmt.Errorf("agent: make ESP key: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	activeAt := now
	if !m.publishedAt.IsZero() {
		activeAt = now.Add(keyActivation)
	}
	m.latest = string(priv.PublicKey().Bytes())
	m.privs[m.latest] = priv
	m.pending, m.lastTry = true, now
	return raftstore.HostKey{Public: priv.PublicKey().Bytes(), ActiveAt: activeAt.UnixNano()}, nil
}

// published records the outcome of a publish started at now.
func (m *keyManager) published(now time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = false
	if err != nil {
		m.log.Warn("cannot publish the ESP key; retrying", "err", err)
		return
	}
	m.publishedAt, m.rotateNow = now, false
}

// run publishes keys and keeps the SAs current until ctx ends: at every
// change of the state and every keyTick. A publish runs beside the loop,
// so activations and retirements keep their time while the leader is slow
// or out of reach.
func (m *keyManager) run(ctx context.Context, state func() *raftstore.State, changes <-chan struct{}) {
	tick := time.NewTicker(keyTick)
	defer tick.Stop()
	var publishing sync.WaitGroup
	defer publishing.Wait()
	for {
		now := time.Now()
		if m.sync(state(), now) {
			k, err := m.newKey(now)
			if err != nil {
				m.published(now, err)
			} else {
				publishing.Add(1)
				go func() {
					defer publishing.Done()
					pctx, cancel := context.WithTimeout(ctx, writeTimeout)
					err := m.publish(pctx, k)
					cancel()
					if err == nil {
						m.log.Info("published a new ESP key", "active_at", time.Unix(0, k.ActiveAt).UTC())
					}
					m.published(now, err)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// SAs returns the current SAs of this host: inbound from the table, and
// the outbound ones in the policy, for the esp sa command.
func (m *keyManager) SAs() (in, out []*esp.SA) {
	in = m.conn.In.SAs()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.peers {
		for _, g := range p.gens {
			out = append(out, g.out)
		}
	}
	for _, e := range m.ext {
		out = append(out, e.out)
	}
	return in, out
}

// espCollector turns the ESP counters into the metric
// vxswitch_esp_packets_total{counter="..."}.
type espCollector struct {
	conn *espconn.Conn
	desc *prometheus.Desc
}

func newESPCollector(conn *espconn.Conn) *espCollector {
	return &espCollector{conn: conn, desc: prometheus.NewDesc("vxswitch_esp_packets_total",
		"ESP in UDP packets of encrypted networks: sealed and opened, and dropped by reason (no_sa, clear_dropped, replay, auth_failed, unknown_spi, ...).",
		[]string{"counter"}, nil)}
}

func (c *espCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *espCollector) Collect(ch chan<- prometheus.Metric) {
	c.conn.Each(func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v), name)
	})
}

// publishKey commits k as this host's ESP key.
func (a *Agent) publishKey(ctx context.Context, k raftstore.HostKey) error {
	h := &raftstore.Host{Name: a.cfg.Name, ESP: &k}
	if a.keys.static != nil {
		h.ESPStatic = hex.EncodeToString(a.keys.static.PublicKey().Bytes())
	}
	_, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpHostKey, Host: h})
	return err
}

// espStats returns the ESP counters by name, for stats.
func (a *Agent) espStats() map[string]uint64 {
	out := map[string]uint64{}
	a.esp.Each(func(name string, v uint64) { out[name] = v })
	return out
}

// handleESPSAs lists the SAs of this host with their keys (local socket
// only): for Wireshark (esp sa -o wireshark) and for debugging.
func (a *Agent) handleESPSAs(w http.ResponseWriter, r *http.Request) {
	in, out := a.keys.SAs()
	list := []api.ESPSA{}
	add := func(dir string, sa *esp.SA) {
		c := sa.Config()
		e := api.ESPSA{Direction: dir, SPI: c.SPI, Src: c.Src.String(), Dst: c.Dst.String(),
			Key: hex.EncodeToString(c.Key), Salt: hex.EncodeToString(c.Salt[:]), Wireshark: esp.WiresharkSA(c)}
		if dir == "out" {
			e.Sent = sa.Sent()
		}
		list = append(list, e)
	}
	for _, sa := range in {
		add("in", sa)
	}
	for _, sa := range out {
		add("out", sa)
	}
	reply(w, list, nil)
}
