package dockerplugin

// The JSON messages of Docker's plugin protocols this package serves: the
// plugin handshake, the remote network driver and the remote IPAM driver
// (moby's docs/extend/plugin_api.md, plugins_network.md and ipam.md). Docker
// POSTs one request to /Plugin.Activate or /<Driver>.<Call> and reads one
// answer; an answer with a non-empty Err fails the call with that message.
// Fields this plugin does not read are left out.

// mediaType is the content type of every answer.
const mediaType = "application/vnd.docker.plugins.v1.2+json"

// errorResponse is the answer to a failed call.
type errorResponse struct {
	Err string
}

type activateResponse struct {
	Implements []string
}

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

// ipData is one address family's pool of a network, as the IPAM driver gave
// it: Pool and Gateway are in CIDR form.
type ipData struct {
	AddressSpace string
	Pool         string
	Gateway      string
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipData
	IPv6Data  []ipData
}

type networkRequest struct {
	NetworkID string
}

// endpointInterface is the interface of an endpoint: Address (CIDR) from
// the IPAM driver; MacAddress if the user gave one (docker run
// --mac-address), else empty, and then the driver may choose it.
type endpointInterface struct {
	Address     string
	AddressIPv6 string
	MacAddress  string
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]any
}

type createEndpointResponse struct {
	Interface *endpointInterface `json:",omitempty"`
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type endpointInfoResponse struct {
	Value map[string]string
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
}

// interfaceName tells Docker which interface of the host namespace to move
// into the container (SrcName) and the prefix of its name there ("eth"
// gives eth0, eth1, ...).
type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type joinResponse struct {
	InterfaceName interfaceName
	// DisableGatewayService keeps Docker from adding a gateway network
	// (docker_gwbridge) to containers that have only this one.
	DisableGatewayService bool
}

type ipamCapabilitiesResponse struct {
	RequiresMACAddress bool
}

type addressSpacesResponse struct {
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

type requestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

type requestPoolResponse struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type releasePoolRequest struct {
	PoolID string
}

type requestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

type requestAddressResponse struct {
	Address string
	Data    map[string]string
}

type releaseAddressRequest struct {
	PoolID  string
	Address string
}

// gatewayRequest is the value of Options["RequestAddressType"] in a
// RequestAddress call for a network's gateway.
const gatewayRequest = "com.docker.network.gateway"
