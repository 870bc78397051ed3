// Command vxswitch-cni is a CNI plugin (spec 1.1, and the 0.4.0 and 1.0.0
// result formats) that puts a container on a vxswitch network: ADD asks the
// local agent, over its unix socket, to attach an endpoint whose TAP is
// created in CNI_NETNS as CNI_IFNAME with an address from the cluster's
// IPAM; DEL detaches it; CHECK verifies it; GC frees what the runtime no
// longer lists; STATUS says whether the agent can serve ADD.
//
// Each endpoint is tagged with the owner "cni:CONTAINERID/IFNAME", which is
// how DEL, CHECK and GC find it again.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		GC:     cmdGC,
		Status: cmdStatus,
	}, version.PluginSupports("0.4.0", "1.0.0", "1.1.0"), "vxswitch-cni: attaches containers to vxswitch networks")
}
