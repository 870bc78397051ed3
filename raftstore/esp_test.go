package raftstore

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func publishKey(host string, b byte, at int64) Command {
	return Command{Op: OpHostKey, Time: at, Host: &Host{Name: host, ESP: &HostKey{Public: bytes.Repeat([]byte{b}, 32), ActiveAt: at, Epoch: 99, Index: 7}}}
}

// TestHostKey: host.key sets the epoch and the index itself, a new key
// keeps the index and bumps the epoch, host.add keeps the key, bad keys
// and unknown hosts are refused, and an encrypted network keeps its flag.
func TestHostKey(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	ka := h.must(publishKey("a", 1, 10)).Host.ESP
	kb := h.must(publishKey("b", 2, 11)).Host.ESP
	if ka.Epoch != 1 || ka.Index != 1 || kb.Epoch != 1 || kb.Index != 2 {
		t.Fatalf("first keys: a epoch %d index %d, b epoch %d index %d; want 1/1 and 1/2", ka.Epoch, ka.Index, kb.Epoch, kb.Index)
	}
	ka2 := h.must(publishKey("a", 3, 20)).Host.ESP
	if ka2.Epoch != 2 || ka2.Index != 1 || ka2.ActiveAt != 20 || ka2.Public[0] != 3 {
		t.Fatalf("second key of a: %+v", ka2)
	}
	h.must(addHost("a", "10.0.0.1"))
	if got := h.f.State().Hosts["a"].ESP; got == nil || got.Epoch != 2 {
		t.Fatalf("host.add of a known host dropped its key: %+v", got)
	}
	if k := h.f.State().Hosts["a"].ESPPublicKey(); k == nil || k.Bytes()[0] != 3 {
		t.Fatal("ESPPublicKey does not return the current key")
	}
	bad := publishKey("a", 4, 30)
	bad.Host.ESP.Public = bad.Host.ESP.Public[:31]
	if res := h.apply(bad); !strings.Contains(res.Err, "32-byte") {
		t.Errorf("short key: %q", res.Err)
	}
	if res := h.apply(publishKey("zz", 4, 30)); !strings.Contains(res.Err, "not a member") {
		t.Errorf("unknown host: %q", res.Err)
	}
	cmd := createNet("sec", "10.50.0.0/24", 0)
	cmd.Network.Encrypted = true
	if n := h.must(cmd).Network; !n.Encrypted {
		t.Fatal("network.create dropped Encrypted")
	}
}

// TestVTEPKey: a VTEP's key is accepted on an encrypted network only,
// replaces the key of a VTEP already added, and vtep.remove finds the VTEP
// by network and address; host.key records the static key, host.add keeps
// it.
func TestVTEPKey(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	cmd := createNet("sec", "10.50.0.0/24", 0)
	cmd.Network.Encrypted = true
	h.must(cmd)
	h.must(createNet("web", "10.51.0.0/24", 0))
	key := func(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 32) }
	vtep := func(network, k string) Command {
		return Command{Op: OpVTEPAdd, VTEP: &VTEP{Network: network, Addr: netip.MustParseAddr("10.0.0.9"), ESP: k}}
	}
	if res := h.apply(vtep("web", key(1))); !strings.Contains(res.Err, "not encrypted") {
		t.Errorf("key on a clear network: %q", res.Err)
	}
	if res := h.apply(vtep("sec", "abc")); !strings.Contains(res.Err, "64 hex digits") {
		t.Errorf("bad key: %q", res.Err)
	}
	h.must(vtep("sec", key(1)))
	h.must(vtep("sec", key(2)))
	if vs := h.f.State().VTEPs; len(vs) != 1 || vs[0].ESP != key(2) || vs[0].ESPKey() == nil {
		t.Fatalf("VTEPs after a new key: %+v", vs)
	}
	if res := h.apply(vtep("sec", "")); !strings.Contains(res.Err, "already") {
		t.Errorf("vtep.add again without a key: %q", res.Err)
	}
	h.must(Command{Op: OpVTEPRemove, VTEP: &VTEP{Network: "sec", Addr: netip.MustParseAddr("10.0.0.9")}})
	if vs := h.f.State().VTEPs; len(vs) != 0 {
		t.Fatalf("VTEPs after remove: %+v", vs)
	}

	pk := publishKey("a", 1, 10)
	pk.Host.ESPStatic = key(5)
	h.must(pk)
	h.must(addHost("a", "10.0.0.1"))
	if a := h.f.State().Hosts["a"]; a.ESPStatic != key(5) || a.ESPStaticKey() == nil {
		t.Fatalf("static key after host.add: %q", a.ESPStatic)
	}
	pk.Host.ESPStatic = "zz"
	if res := h.apply(pk); !strings.Contains(res.Err, "static key") {
		t.Errorf("bad static key: %q", res.Err)
	}
}
