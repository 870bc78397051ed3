package deps
import (
 _ "github.com/songgao/water"
 _ "github.com/google/gopacket/layers"
 _ "github.com/google/gopacket/pcapgo"
 _ "golang.org/x/sys/unix"
 _ "github.com/hashicorp/raft"
 _ "github.com/hashicorp/raft-boltdb/v2"
 _ "github.com/urfave/cli/v2"
 _ "github.com/vishvananda/netlink"
 _ "github.com/vishvananda/netns"
)
