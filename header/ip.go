package header

// IP protocol numbers (the IANA "Assigned Internet Protocol Numbers"
// registry), used in the IPv4 Protocol field and the IPv6 Next Header field.
const (
	ProtoHopByHop = 0  // IPv6 Hop-by-Hop Options (RFC 8200 section 4.3)
	ProtoICMP     = 1  // ICMP for IPv4 (RFC 792)
	ProtoTCP      = 6  // RFC 9293
	ProtoUDP      = 17 // RFC 768
	ProtoRouting  = 43 // IPv6 Routing header (RFC 8200 section 4.4)
	ProtoFragment = 44 // IPv6 Fragment header (RFC 8200 section 4.5)
	ProtoESP      = 50 // RFC 4303
	ProtoAH       = 51 // RFC 4302
	ProtoICMPv6   = 58 // RFC 4443
	ProtoNoNext   = 59 // IPv6 No Next Header (RFC 8200 section 4.7)
	ProtoDstOpts  = 60 // IPv6 Destination Options (RFC 8200 section 4.6)
)
