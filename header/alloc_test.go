package header

import (
	"testing"

	"github.com/google/gopacket/layers"
)

// TestAllocs walks frames through every view and checksum the way the data
// path does and checks that none of it allocates.
func TestAllocs(t *testing.T) {
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	ip := ip4(layers.IPProtocolTCP)
	_ = tcp.SetNetworkLayerForChecksum(ip)
	v4 := build(t, eth(macB, macA, layers.EthernetTypeIPv4), ip, tcp)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	ip6i := ip6(layers.IPProtocolICMPv6)
	_ = icmp.SetNetworkLayerForChecksum(ip6i)
	v6 := build(t, eth(macB, macA, layers.EthernetTypeIPv6), ip6i, icmp, &layers.ICMPv6NeighborSolicitation{
		TargetAddress: ipOf(ip6B), Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: hw(macA)}}})
	arp := build(t, eth(BroadcastMAC, macA, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet,
		Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: hw(macA), SourceProtAddress: ipOf(ip4A), DstHwAddress: make([]byte, 6), DstProtAddress: ipOf(ip4B)})
	var ok bool
	walk := func() {
		ok = true
		e := Ethernet(v4)
		h := IPv4(e.Payload())
		s := TCP(h.Payload())
		mss, found := s.MSS()
		ok = ok && e.IsValid() && !e.Stacked() && h.IsValid() && h.VerifyChecksum() && s.IsValid() &&
			s.VerifyChecksum(h.PseudoSum(ProtoTCP, len(s))) && found && mss == 1460 && e.Source() == macA
		h.SetTTL(63)
		h.UpdateChecksum()
		h.SetTTL(64)
		h.UpdateChecksum()

		e = Ethernet(v6)
		h6 := IPv6(e.Payload())
		proto, off, found := h6.UpperLayer()
		m := ICMPv6(h6[off:])
		mac, got := m.NDPOptions().LinkAddr(NDPOptionSourceLinkAddr)
		ok = ok && h6.IsValid() && found && proto == ProtoICMPv6 && m.IsNeighbor() && m.Target() == ip6B &&
			m.VerifyChecksum(h6.PseudoSum(ProtoICMPv6, len(m))) && got && mac == macA

		a := ARP(Ethernet(arp).Payload())
		ok = ok && a.IsValid() && a.TargetIP() == ip4B && a.SenderMAC() == macA
	}
	if n := testing.AllocsPerRun(100, walk); n != 0 {
		t.Errorf("%v allocations per walk, want 0", n)
	}
	if !ok {
		t.Error("the walk did not read the frames as built")
	}
}
