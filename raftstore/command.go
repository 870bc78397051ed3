package raftstore

import (
	"encoding/json"
	"fmt"
)

// Operations a Command can carry (Command.Op).
const (
	OpHostAdd        = "host.add"        // Host: add a host, or update the addresses of a known one
	OpHostRemove     = "host.remove"     // Name: remove a host with its endpoints and MAC entries
	OpNetworkCreate  = "network.create"  // Network: Name, Subnet, VNI (0 = allocate), MTU
	OpNetworkRemove  = "network.remove"  // Name: remove an empty network with its VTEPs and MAC entries
	OpEndpointAttach = "endpoint.attach" // Endpoint: register an endpoint; the FSM assigns its IP
	OpEndpointDetach = "endpoint.detach" // Name: remove an endpoint, freeing its IP
	OpEndpointUpdate = "endpoint.update" // Endpoint: Name, then the new NetNS, IfName and Aliases
	OpAddressReserve = "address.reserve" // Reservation: Network, Host, Owner, IP (zero = allocate)
	OpAddressRelease = "address.release" // Reservation: Network and IP of a reservation to drop
	OpVTEPAdd        = "vtep.add"        // VTEP: add an external VTEP to a network
	OpVTEPRemove     = "vtep.remove"     // VTEP: remove an external VTEP from a network
	OpMACAnnounce    = "mac.announce"    // MACs: add or refresh learned MAC entries
	OpMACWithdraw    = "mac.withdraw"    // MACs: remove learned MAC entries of their host
	OpClusterInit    = "cluster.init"    // Cluster: the CA and the first token (once, at bootstrap)
	OpTokenRotate    = "token.rotate"    // Cluster: TokenNonce, TokenHash and TokenExpires of the new token; revokes extra tokens
	OpCARotate       = "ca.rotate"       // Cluster: the new CACert, with TokenNonce and TokenHash of its token
	OpCARetire       = "ca.retire"       // no argument: stop trusting the CAs a rotation replaced
	OpTokenCreate    = "token.create"    // Token: an extra join token (hash of its secret, expiry, single use)
	OpTokenUse       = "token.use"       // TokenHash, Host (Name, KeyFP): admit an enrolment, using up a single-use token
	OpHostKey        = "host.key"        // Host: Name and ESP (Public, ActiveAt): publish the host's new ESP public key (esp.go)
)

// Command is one change to the replicated state: the data of one raft log
// entry. Only the fields listed for Op are read; see the Op constants.
type Command struct {
	Op string
	// ReqID is an idempotency key: a command whose ReqID was already applied
	// successfully returns the first Result again and changes nothing. Empty
	// means no deduplication. The FSM remembers the last 10,000 IDs.
	ReqID string `json:",omitempty"`
	// Time is the command's time in unix nanoseconds, chosen by the caller
	// (Store.Apply fills it in when zero); the FSM never reads the clock.
	Time int64 `json:",omitempty"`
	// Origin is the host that proposed the command (Store.Apply fills in
	// the local node when empty); the FSM only records it in its history.
	Origin string `json:",omitempty"`
	// Rules is the version of the validation rules the command is checked
	// under (see CurrentRules). Store.Apply sets it to CurrentRules; 0 is
	// a command written before rules had versions.
	Rules int `json:",omitempty"`

	Host     *Host      `json:",omitempty"`
	Network  *Network   `json:",omitempty"`
	Endpoint *Endpoint  `json:",omitempty"`
	VTEP     *VTEP      `json:",omitempty"`
	MACs     []MACEntry `json:",omitempty"`
	Name     string     `json:",omitempty"` // host.remove, network.remove, endpoint.detach
	// Reservation is the argument of address.reserve and address.release.
	Reservation *Reservation `json:",omitempty"`
	Cluster     *Cluster     `json:",omitempty"` // cluster.init, token.rotate
	Token       *JoinToken   `json:",omitempty"` // token.create
	// TokenHash is the hex SHA-256 of the token secret an enrolling host
	// presented (token.use).
	TokenHash string `json:",omitempty"`
}

// Result is what the FSM returns for one Command. Err != "" means the
// command was rejected and the state is unchanged; Err is one line naming
// the problem and the fix. Otherwise Host, Network or Endpoint hold the
// object the command created, updated or removed.
type Result struct {
	Err      string    `json:",omitempty"`
	Host     *Host     `json:",omitempty"`
	Network  *Network  `json:",omitempty"`
	Endpoint *Endpoint `json:",omitempty"`
	// Reservation is the address address.reserve kept or address.release
	// dropped.
	Reservation *Reservation `json:",omitempty"`
	// Accepted and Ignored count the entries of mac.announce and
	// mac.withdraw that were applied and skipped.
	Accepted int `json:",omitempty"`
	Ignored  int `json:",omitempty"`
}

// EncodeCommand returns the raft log data for cmd.
func EncodeCommand(cmd Command) ([]byte, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("raftstore: encode %s command: %w", cmd.Op, err)
	}
	return b, nil
}

// DecodeCommand parses raft log data written by EncodeCommand.
func DecodeCommand(data []byte) (Command, error) {
	var cmd Command
	if err := json.Unmarshal(data, &cmd); err != nil {
		return Command{}, fmt.Errorf("raftstore: decode command: %w", err)
	}
	return cmd, nil
}

// clone returns a deep copy of r, so a recorded Result is never shared with
// a caller that might modify it.
func (r *Result) clone() *Result {
	c := *r
	if r.Host != nil {
		h := *r.Host
		c.Host = &h
	}
	if r.Network != nil {
		n := *r.Network
		c.Network = &n
	}
	if r.Endpoint != nil {
		e := *r.Endpoint
		e.Aliases = append([]string(nil), e.Aliases...)
		c.Endpoint = &e
	}
	if r.Reservation != nil {
		v := *r.Reservation
		c.Reservation = &v
	}
	return &c
}
