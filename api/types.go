// Package api defines the HTTP+JSON interface of a vxswitch agent and a
// client for it. Every route is an api.Route constant (routes.go), which
// the agent registers its handlers under and the Client calls, with one
// typed method per route: no other package writes a path.
//
// The CLI reaches its local agent over a unix socket; agents reach each other
// over mutual TLS on the API address each host advertises, to forward writes
// to the Raft leader and to join a cluster. A joining host, which has no
// certificate yet, may call only the enrolment route (EnrollRequest). Every request and response body is JSON.
// Errors come back as a non-2xx status with an Error body whose message is
// meant for a person.
package api

import "net/netip"

// DefaultSocket is the unix socket the CLI uses when neither --socket nor
// VXSWITCH_SOCKET names another.
const DefaultSocket = "/run/vxswitch/vxswitch.sock"

// Default TCP ports an agent listens on at its advertised address.
const (
	DefaultRaftPort = 7946
	DefaultAPIPort  = 7947
)

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
}

// Status describes one agent.
type Status struct {
	Name   string     `json:"name"`
	VTEP   netip.Addr `json:"vtep"`
	Role   string     `json:"role"`
	Leader string     `json:"leader"`
	Index  uint64     `json:"index"`
	// AppliedIndex is the Raft index this host's state includes;
	// LeaderIndex the leader's read index as of this request (0 when no
	// leader answered within a few seconds), and Lag the difference.
	AppliedIndex uint64 `json:"applied_index"`
	// VoterReplacements counts the dead voters this host, as leader,
	// replaced by a non-voter (agent --voter-dead-after).
	VoterReplacements uint64 `json:"voter_replacements"`
	LeaderIndex       uint64 `json:"leader_index"`
	Lag               uint64 `json:"lag"`
	StateHash         string `json:"state_hash"`
	UnderlayMTU       int    `json:"underlay_mtu"`
	MTUSource         string `json:"mtu_source"`
	Ports             int    `json:"ports"`
	// TLSRefused counts connections to this host's Raft and API ports
	// refused for want of a certificate of the cluster (failed TLS
	// handshakes, and API requests without a certificate).
	TLSRefused uint64 `json:"tls_refused"`
	// History is what this host's history of committed changes retains.
	History *HistoryStatus `json:"history,omitempty"`
}

// ReadIndex is the leader's answer to a follower that wants to serve a
// consistent read: once the follower has applied Index, its state holds
// every write committed before it asked.
type ReadIndex struct {
	Index uint64 `json:"index"`
}

// Member is one host of the cluster as `vxswitch members` shows it.
type Member struct {
	Name     string     `json:"name"`
	VTEP     netip.Addr `json:"vtep"`
	RaftAddr string     `json:"raft_addr"`
	APIAddr  string     `json:"api_addr"`
	// Role is "leader", "voter", "nonvoter" or "none" (not in the Raft
	// configuration).
	Role string `json:"role"`
	// State is "alive" when the host's agent answered a probe just now,
	// "unreachable" otherwise.
	State string `json:"state"`
	// LastContact is, on the leader, how long ago a host that stopped
	// answering Raft heartbeats last answered ("" when it answers).
	LastContact string `json:"last_contact,omitempty"`
	// Lag is how many Raft entries the host's applied state is behind
	// this one's, from its answer to the probe.
	Lag uint64 `json:"lag"`
}

// JoinRequest asks the cluster to admit a host. Agents send it to any member;
// a follower forwards it to the leader.
type JoinRequest struct {
	Name     string     `json:"name"`
	VTEP     netip.Addr `json:"vtep"`
	RaftAddr string     `json:"raft_addr"`
	APIAddr  string     `json:"api_addr"`
	// KeyFP is the key fingerprint of the joining host's certificate
	// (pki.KeyFingerprint). The member that the host reached directly sets
	// it from the TLS connection, whatever the host wrote.
	KeyFP string `json:"key_fp,omitempty"`
	// CertCA is the digest of the CA that signed the joining host's
	// certificate, set like KeyFP.
	CertCA string `json:"cert_ca,omitempty"`
}

// EnrollRequest asks the cluster for a node certificate. A joining host
// sends it with the secret of its join token, over TLS to a server whose
// CA it has checked against the token, and without a certificate of its
// own; a follower forwards it to the leader.
type EnrollRequest struct {
	Name   string `json:"name"`
	CSR    string `json:"csr"`    // PEM certificate signing request for Name
	Secret string `json:"secret"` // the join token's secret
}

// EnrollResponse carries the signed node certificate.
type EnrollResponse struct {
	Certificate string `json:"certificate"` // PEM node certificate
	CA          string `json:"ca"`          // PEM CA certificate
}

// Token is the cluster's current join token, as `vxswitch token` prints it.
type Token struct {
	Token string `json:"token"`
	// RotatedAt is when the token was made, in unix nanoseconds.
	RotatedAt int64 `json:"rotated_at"`
	// Expires is when the token stops admitting hosts, in unix
	// nanoseconds; 0 means never.
	Expires int64 `json:"expires,omitempty"`
	// SingleUse tells that the token admits one host only.
	SingleUse bool `json:"single_use,omitempty"`
}

// TokenRequest asks for a new join token: a rotation of the cluster's token
// (POST /v1/token/rotate) or an extra one (POST /v1/tokens). An empty body
// is the zero TokenRequest.
type TokenRequest struct {
	// TTL is how long the token admits hosts, in seconds; 0 means for ever.
	TTL int64 `json:"ttl_seconds,omitempty"`
	// SingleUse makes an extra token that admits one host only.
	SingleUse bool `json:"single_use,omitempty"`
}

// JoinResponse tells a joining host how it was admitted.
type JoinResponse struct {
	Voter  bool   `json:"voter"`
	Leader string `json:"leader"`
}

// RemoveRequest asks the leader to remove a host from the cluster.
type RemoveRequest struct {
	Name string `json:"name"`
}

// NetworkRequest creates a network. VNI 0 lets the cluster choose one; MTU 0
// uses what the underlay carries.
type NetworkRequest struct {
	Name   string `json:"name"`
	Subnet string `json:"subnet"`
	VNI    uint32 `json:"vni"`
	MTU    int    `json:"mtu"`
	// Subnet6 is the IPv6 subnet of a dual-stack network, like
	// fd20::/64; "" makes an IPv4-only network.
	Subnet6 string `json:"subnet6,omitempty"`
	// Encrypted carries the network's frames between hosts as ESP.
	Encrypted bool `json:"encrypted,omitempty"`
}

// Network is a network as listed to people.
type Network struct {
	Name     string       `json:"name"`
	VNI      uint32       `json:"vni"`
	Subnet   netip.Prefix `json:"subnet"`
	Resolver netip.Addr   `json:"resolver"`
	// MTU is the MTU asked for at creation, 0 if none.
	MTU int `json:"mtu"`
	// Encrypted tells that the network's frames travel between hosts as
	// ESP in UDP (port 4500).
	Encrypted bool `json:"encrypted"`
	// EndpointMTU is the MTU this host gives the network's endpoints.
	EndpointMTU int        `json:"endpoint_mtu"`
	Endpoints   int        `json:"endpoints"`
	VTEPs       []string   `json:"vteps"`
	Hosts       []string   `json:"hosts"`
	Members     []Endpoint `json:"members,omitempty"`
	// Reserved lists the addresses kept for endpoints about to attach
	// (Docker's IPAM asks for an address before the endpoint exists).
	Reserved []Reservation `json:"reserved,omitempty"`
	// Subnet6 and Resolver6 are the IPv6 subnet and resolver address of
	// a dual-stack network; zero for an IPv4-only one.
	Subnet6   netip.Prefix `json:"subnet6,omitzero"`
	Resolver6 netip.Addr   `json:"resolver6,omitzero"`
}

// Reservation is an address of a network kept for an endpoint that is
// about to attach on Host.
type Reservation struct {
	IP    netip.Addr `json:"ip"`
	Host  string     `json:"host"`
	Owner string     `json:"owner"`
}

// AttachRequest attaches a new endpoint to a network on the agent's host.
type AttachRequest struct {
	Network string   `json:"network"`
	Name    string   `json:"name"`
	NetNS   string   `json:"netns"`
	IfName  string   `json:"ifname"`
	Aliases []string `json:"aliases,omitempty"`
	// Owner tags the endpoint with what asked for it (a container runtime
	// integration, for example "cni:CONTAINERID/IFNAME"); at most 256 bytes.
	Owner string `json:"owner,omitempty"`
}

// Endpoint is an attached endpoint.
type Endpoint struct {
	Name    string     `json:"name"`
	Network string     `json:"network"`
	Host    string     `json:"host"`
	MAC     string     `json:"mac"`
	IP      netip.Addr `json:"ip"`
	Prefix  int        `json:"prefix"`
	NetNS   string     `json:"netns"`
	IfName  string     `json:"ifname"`
	MTU     int        `json:"mtu,omitempty"`
	Aliases []string   `json:"aliases,omitempty"`
	Owner   string     `json:"owner,omitempty"`
	// Resolver is the network's in-band DNS resolver address.
	Resolver netip.Addr `json:"resolver"`
	// ResolvConf is the resolv.conf written for a netns given by name.
	ResolvConf string `json:"resolv_conf,omitempty"`
	// IP6, Prefix6 and Resolver6 are the endpoint's IPv6 address, the
	// length of its network's IPv6 subnet and the resolver's IPv6 address
	// on a dual-stack network; zero on an IPv4-only one.
	IP6       netip.Addr `json:"ip6,omitzero"`
	Prefix6   int        `json:"prefix6,omitempty"`
	Resolver6 netip.Addr `json:"resolver6,omitzero"`
}

// VTEPRequest registers or removes an external VTEP of a network.
type VTEPRequest struct {
	Network string `json:"network"`
	Addr    string `json:"addr"`
	// ESP is the hex X25519 public key of the peer on an encrypted network
	// ('vtep xfrm'); it replaces the key of a VTEP already added. "" for
	// none.
	ESP string `json:"esp,omitempty"`
}

// XfrmHost is what 'vtep xfrm' needs of a member host to print the
// commands of its SAs with the peer: the reply of RouteVTEPAdd when the
// request has a key.
type XfrmHost struct {
	Name   string     `json:"name"`
	VTEP   netip.Addr `json:"vtep"`
	Static string     `json:"static"` // hex static X25519 public key; "" if the host has not published one
	Index  uint32     `json:"index"`  // its ESP key index (the SPIs); 0 if it has none
}

// VTEP is an external VTEP: a peer that does not run vxswitch.
type VTEP struct {
	Network string     `json:"network"`
	VNI     uint32     `json:"vni"`
	Addr    netip.Addr `json:"addr"`
	// ESP is the peer's X25519 public key (hex) on an encrypted network,
	// set by 'vtep xfrm'; "" for a peer without one (it gets nothing on
	// an encrypted network).
	ESP string `json:"esp,omitempty"`
}

// FDBEntry is one row of a host's forwarding table.
type FDBEntry struct {
	Network string `json:"network"`
	VNI     uint32 `json:"vni"`
	MAC     string `json:"mac"`
	// Port is the local port (endpoint name) for local entries.
	Port string `json:"port,omitempty"`
	// VTEP is the remote VTEP address for remote entries.
	VTEP string `json:"vtep,omitempty"`
	// Host names the member host behind VTEP, if any.
	Host string `json:"host,omitempty"`
	// Origin is "local", "raft" or "learned".
	Origin string `json:"origin"`
	// AgeSeconds is how long ago a learned entry was last seen.
	AgeSeconds float64 `json:"age_seconds"`
}

// Stats are a host's data-plane counters.
type Stats struct {
	RxFrames       uint64            `json:"rx_frames"`
	TxFrames       uint64            `json:"tx_frames"`
	RxBytes        uint64            `json:"rx_bytes"`
	TxBytes        uint64            `json:"tx_bytes"`
	EncapFrames    uint64            `json:"encap_frames"`
	DecapFrames    uint64            `json:"decap_frames"`
	FloodCopies    uint64            `json:"flood_copies"`
	LocalSwitched  uint64            `json:"local_switched"`
	CsumCompleted  uint64            `json:"csum_completed"`
	ARPSuppressed  uint64            `json:"arp_suppressed"`
	ARPFlooded     uint64            `json:"arp_flooded"`
	GARPSent       uint64            `json:"garp_sent"`
	NDPAnswered    uint64            `json:"ndp_answered"`
	NDPDADAnswered uint64            `json:"ndp_dad_answered"`
	NDPFlooded     uint64            `json:"ndp_flooded"`
	UNASent        uint64            `json:"unsolicited_na_sent"`
	DNSQueries     uint64            `json:"dns_queries"`
	DNSTCPConns    uint64            `json:"dns_tcp_conns"`
	DNSTCPQueries  uint64            `json:"dns_tcp_queries"`
	DNSTCPResets   uint64            `json:"dns_tcp_resets"`
	EchoReplies    uint64            `json:"echo_replies"`
	ICMPFragNeeded uint64            `json:"icmp_frag_needed"`
	ICMPv6TooBig   uint64            `json:"icmpv6_too_big"`
	Fragmented     uint64            `json:"fragmented"`
	MSSClamped     uint64            `json:"mss_clamped"`
	Drops          map[string]uint64 `json:"drops"`
	// ESP are the counters of encrypted networks' ESP in UDP: sealed,
	// opened, and dropped by reason.
	ESP map[string]uint64 `json:"esp,omitempty"`
	// Ports are the counters of each local port, sorted by name.
	Ports []PortStats `json:"ports"`
}

// PortStats are the counters of one local port (an endpoint's TAP): Rx is
// what the endpoint sent into the switch, Tx what the switch wrote to it.
type PortStats struct {
	Name     string `json:"name"`
	Network  string `json:"network"`
	RxFrames uint64 `json:"rx_frames"`
	RxBytes  uint64 `json:"rx_bytes"`
	TxFrames uint64 `json:"tx_frames"`
	TxBytes  uint64 `json:"tx_bytes"`
}

// MTUReport explains a host's MTU numbers: the underlay MTU and where it
// was found, the VXLAN overhead, the endpoint MTU of each network, and the
// path MTU to each peer host measured just now with DF probes.
type MTUReport struct {
	Host        string `json:"host"`
	UnderlayMTU int    `json:"underlay_mtu"`
	Source      string `json:"source"`
	// Family is the underlay's IP family, "IPv4" or "IPv6", taken from
	// the advertised address.
	Family string `json:"family"`
	// Overhead is what VXLAN adds to an inner IP packet: inner Ethernet 14
	// + VXLAN 8 + UDP 8 + outer IPv4 20 (50), or outer IPv6 40 (70).
	Overhead    int          `json:"overhead"`
	EndpointMTU int          `json:"endpoint_mtu"`
	Networks    []NetworkMTU `json:"networks"`
	Peers       []PeerMTU    `json:"peers"`
}

// NetworkMTU is the endpoint MTU of one network on this host.
type NetworkMTU struct {
	Name        string `json:"name"`
	Asked       int    `json:"asked"`
	EndpointMTU int    `json:"endpoint_mtu"`
	// DualStack is set when the network carries IPv6 (beside IPv4 unless
	// IPv6Only).
	DualStack bool `json:"dual_stack,omitempty"`
	// IPv6Only is set when the network carries IPv6 and no IPv4.
	IPv6Only bool `json:"ipv6_only,omitempty"`
}

// PeerMTU is the path MTU to one peer host.
type PeerMTU struct {
	Host    string     `json:"host"`
	VTEP    netip.Addr `json:"vtep"`
	PathMTU int        `json:"path_mtu"` // 0 = no probe got through
	Warning string     `json:"warning,omitempty"`
}

// DNSName is one name a network's resolver answers.
type DNSName struct {
	Name    string     `json:"name"`
	Network string     `json:"network"`
	IP      netip.Addr `json:"ip"`
	Kind    string     `json:"kind"` // "name" or "alias"
}

// DNSLookup is the answer of the agent's resolver for one name.
type DNSLookup struct {
	Name    string       `json:"name"`
	Network string       `json:"network"`
	Addrs   []netip.Addr `json:"addrs"`
}

// RenewRequest asks the leader for a new certificate for the key of the
// calling host (POST /v1/internal/renew, peer API).
type RenewRequest struct {
	CSR string `json:"csr"` // PEM certificate signing request for the caller's own name and key
}

// RenewResponse is a renewed node certificate and the CAs to trust.
type RenewResponse struct {
	Certificate string `json:"certificate"` // PEM node certificate
	Trust       string `json:"trust"`       // PEM CA certificates: the signing CA first
}

// CAKeyResponse hands a voter the cluster CA's key (POST
// /v1/internal/cakey, peer API, voters only).
type CAKeyResponse struct {
	CACert string `json:"ca_cert"`
	Key    string `json:"key"`
}

// CAInfo describes the cluster CA and this host's certificate (GET /v1/ca,
// POST /v1/ca/rotate).
type CAInfo struct {
	Digest      string   `json:"digest"`                 // hex SHA-256 of the CA certificate
	Previous    []string `json:"previous,omitempty"`     // digests of replaced CAs still trusted
	RotatedAt   int64    `json:"rotated_at,omitempty"`   // unix nanoseconds of the last rotation
	KeyInState  bool     `json:"key_in_state,omitempty"` // the CA key is in the replicated state (cluster made before it moved)
	HoldsKey    bool     `json:"holds_key"`              // this host holds the CA key (voters do)
	CertCA      string   `json:"cert_ca"`                // digest of the CA that signed this host's certificate
	CertExpires int64    `json:"cert_expires"`           // unix nanoseconds
	// Renewed lists the hosts whose certificate the current CA signed.
	Renewed []string `json:"renewed,omitempty"`
}

// ESPSA is one security association of an encrypted network on this host
// (RouteESPSAs): Direction "in" (peer to this host) or "out"; Key and
// Salt in hex. Wireshark is the SA as a line of Wireshark's esp_sa file.
type ESPSA struct {
	Direction string `json:"direction"`
	SPI       uint32 `json:"spi"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	Key       string `json:"key"`
	Salt      string `json:"salt"`
	// Sent is how many packets an outbound SA sealed.
	Sent      uint64 `json:"sent"`
	Wireshark string `json:"wireshark"`
}
