package vswitch

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// dnsCall is one ServeDNS call.
type dnsCall struct {
	vni   uint32
	src   netip.AddrPort
	query []byte
	reply func([]byte)
}

// fakeDNS records queries; when answer is set it replies at once with it.
type fakeDNS struct {
	mu     sync.Mutex
	calls  []dnsCall
	answer []byte
}

func (d *fakeDNS) ServeDNS(vni uint32, src netip.AddrPort, query []byte, reply func([]byte)) {
	d.mu.Lock()
	d.calls = append(d.calls, dnsCall{vni, src, query, reply})
	answer := d.answer
	d.mu.Unlock()
	if answer != nil {
		reply(answer)
	}
}

// DNS messages of the tests: headers only (RFC 1035 section 4.1.1), enough
// for gopacket to decode them.
var (
	testQuery  = []byte{0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	testAnswer = []byte{0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}
	lateAnswer = []byte{0x56, 0x78, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}
)

// dnsFrame is a UDP query from ipA:40000 (port a) to the resolver.
func dnsFrame(t testing.TB, payload []byte) []byte {
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	return ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, false, udp, layers.IPProtocolUDP, payload)
}

func TestDNSQueryAndReply(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	w.fromPort(t, "a", dnsFrame(t, testQuery))

	if len(h.calls) != 1 {
		t.Fatalf("ServeDNS called %d times, want 1", len(h.calls))
	}
	c := h.calls[0]
	if c.vni != 100 || c.src != netip.AddrPortFrom(ipA, 40000) || !bytes.Equal(c.query, testQuery) {
		t.Errorf("ServeDNS(%d, %v, % x), want (100, %v:40000, the query)", c.vni, c.src, c.query, ipA)
	}
	got := onlyFrame(t, w.a.Written())
	pkt := decode(t, got)
	e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !bytes.Equal(e.SrcMAC, resolverMAC[:]) || !bytes.Equal(e.DstMAC, macA[:]) {
		t.Errorf("Ethernet %v -> %v", e.SrcMAC, e.DstMAC)
	}
	if !ip.SrcIP.Equal(resolverIP.AsSlice()) || !ip.DstIP.Equal(ipA.AsSlice()) || ip.TTL != 64 || ip.Protocol != layers.IPProtocolUDP {
		t.Errorf("IPv4 %v -> %v ttl %d proto %v", ip.SrcIP, ip.DstIP, ip.TTL, ip.Protocol)
	}
	if udp.SrcPort != 53 || udp.DstPort != 40000 || !bytes.Equal(udp.Payload, testAnswer) || int(udp.Length) != 8+len(testAnswer) {
		t.Errorf("UDP %d -> %d len %d payload %q", udp.SrcPort, udp.DstPort, udp.Length, udp.Payload)
	}
	if !ipv4HeaderOK(got[14:]) || !udpChecksumOK(got[14:]) {
		t.Error("bad IPv4 or UDP checksum")
	}
	c.reply([]byte("second")) // at most once
	if n := len(w.a.Written()); n != 1 {
		t.Errorf("a got %d frames after a second reply, want 1", n)
	}
	if n := len(w.b.Written()); n != 0 {
		t.Errorf("b got %d frames", n)
	}
	mustNothingSent(t, w)
	if st := w.s.Stats(); st.DNSQueries != 1 {
		t.Errorf("DNSQueries = %d, want 1", st.DNSQueries)
	}
}

func TestDNSLateReply(t *testing.T) {
	h := &fakeDNS{}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	w.fromPort(t, "a", dnsFrame(t, testQuery))
	w.fromPort(t, "a", dnsFrame(t, testQuery))

	done := make(chan struct{})
	go func() { h.calls[0].reply(lateAnswer); close(done) }()
	<-done
	f, ok := w.a.Next(time.Second)
	if !ok || !bytes.HasSuffix(f, lateAnswer) {
		t.Fatalf("no late answer in port a")
	}
	if err := w.s.RemovePort("a"); err != nil {
		t.Fatal(err)
	}
	h.calls[1].reply(testAnswer) // the port is gone: nothing, no panic
	if st := w.s.Stats(); st.Drops["no_port"] != 1 {
		t.Errorf("drops %v, want no_port 1", st.Drops)
	}
}

func TestDNSLargeAnswerFragmented(t *testing.T) {
	answer := fill(3000, 5)
	w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: answer}}, 1450)
	w.fromPort(t, "a", dnsFrame(t, testQuery))
	frames := w.a.Written()
	if len(frames) != 3 {
		t.Fatalf("a got %d frames, want 3 fragments", len(frames))
	}
	d := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	for _, f := range frames {
		if len(f) > 14+1450 || !ipv4HeaderOK(f[14:]) {
			t.Errorf("fragment of %d bytes or bad header checksum", len(f))
		}
		out, err := d.DefragIPv4(decode(t, f).Layer(layers.LayerTypeIPv4).(*layers.IPv4))
		if err != nil {
			t.Fatal(err)
		}
		if out != nil {
			whole = out
		}
	}
	if whole == nil || len(whole.Payload) != 8+len(answer) || !bytes.Equal(whole.Payload[8:], answer) {
		t.Fatal("fragments do not reassemble to the answer")
	}
	ip := append(make([]byte, 20), whole.Payload...) // check the UDP checksum of the whole
	copy(ip, []byte{0x45, 0, byte((20 + len(whole.Payload)) >> 8), byte(20 + len(whole.Payload))})
	copy(ip[12:], resolverIP.AsSlice())
	copy(ip[16:], ipA.AsSlice())
	if !udpChecksumOK(ip) {
		t.Error("bad UDP checksum over the reassembled datagram")
	}
}

func TestResolverTraffic(t *testing.T) {
	ping := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 9, Seq: 3}
	udp54 := &layers.UDP{SrcPort: 40000, DstPort: 54}
	tests := []struct {
		name  string
		dns   DNSHandler
		frame func(t *testing.T) []byte
		drop  string
	}{
		{"no handler", nil, func(t *testing.T) []byte { return dnsFrame(t, testQuery) }, "no_dns"},
		{"udp to another port", &fakeDNS{}, func(t *testing.T) []byte {
			return ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, udp54, layers.IPProtocolUDP, testQuery)
		}, "to_resolver"},
		{"to the resolver MAC", &fakeDNS{}, func(t *testing.T) []byte { return eth(resolverMAC, macA, 0x88b5, 60) }, "to_resolver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{DNS: tt.dns}, 1450)
			w.fromPort(t, "a", tt.frame(t))
			if got := writtenCount(w.a, w.b); got[0]+got[1] != 0 {
				t.Errorf("frames written to a, b = %v, want none", got)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.Drops[tt.drop] != 1 || st.DNSQueries != 0 {
				t.Errorf("drops %v DNSQueries %d, want %s 1", st.Drops, st.DNSQueries, tt.drop)
			}
		})
	}

	t.Run("ping", func(t *testing.T) {
		w := newNamesWorld(t, Config{}, 1450)
		w.fromPort(t, "a", ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, ping, layers.IPProtocolICMPv4, []byte("ping data")))
		got := onlyFrame(t, w.a.Written())
		checkByOracle(t, got)
		pkt := decode(t, got)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !bytes.Equal(e.SrcMAC, resolverMAC[:]) || !bytes.Equal(e.DstMAC, net.HardwareAddr(macA[:])) ||
			!ip.SrcIP.Equal(resolverIP.AsSlice()) || !ip.DstIP.Equal(ipA.AsSlice()) {
			t.Errorf("reply %v/%v -> %v/%v", e.SrcMAC, ip.SrcIP, e.DstMAC, ip.DstIP)
		}
		if icmp.TypeCode.Type() != layers.ICMPv4TypeEchoReply || icmp.Id != 9 || icmp.Seq != 3 || string(icmp.Payload) != "ping data" {
			t.Errorf("ICMP %v id %d seq %d payload %q", icmp.TypeCode, icmp.Id, icmp.Seq, icmp.Payload)
		}
		mustNothingSent(t, w)
		if st := w.s.Stats(); st.EchoReplies != 1 {
			t.Errorf("EchoReplies = %d, want 1", st.EchoReplies)
		}
	})
}

// FuzzFromPort feeds arbitrary frames from a TAP port through the whole
// local path (ARP, resolver, MTU, MSS) of a network with a small MTU: it
// must never panic, and every frame it writes back into the port must fit
// the MTU.
func FuzzFromPort(f *testing.F) {
	f.Add(arpFrame(f, macA, ipA, ipR))
	f.Add(dnsFrame(f, testQuery))
	f.Add(tcpFrame(f, false, true, false, nil))
	f.Add(ipv4Frame(f, resolverMAC, macA, ipA, resolverIP, true, &layers.TCP{SrcPort: 40000, DstPort: 53, SYN: true, Window: 65535}, layers.IPProtocolTCP, nil))
	f.Add(ipv4Frame(f, resolverMAC, macA, ipA, resolverIP, true, &layers.TCP{SrcPort: 40000, DstPort: 53, ACK: true, PSH: true, Seq: 1}, layers.IPProtocolTCP, []byte{0, 12, 0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(ipv4Frame(f, macR, macA, ipA, ipR, false, nil, layers.IPProtocolUDP, fill(700, 0)))
	f.Add(ipv4Frame(f, macR, macA, ipA, ipR, true, nil, layers.IPProtocolUDP, fill(700, 0)))
	f.Fuzz(func(t *testing.T, frame []byte) {
		w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: fill(1000, 0)}}, 576)
		w.fromPort(t, "a", frame)
		for _, out := range w.a.Written() {
			if len(out) > 14+4+576 {
				t.Fatalf("wrote a %d-byte frame into the port", len(out))
			}
		}
	})
}
