package decode

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"vxswitch/esp"
)

// TestESPInUDP explains a real sealed packet on port 4500: SPI, sequence
// number, IV, encrypted part, ICV and the overhead; a keepalive and a
// short packet get their own explanation.
func TestESPInUDP(t *testing.T) {
	sa, err := esp.NewSA(esp.Config{SPI: 0x1002, Key: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	n := 8 + 8 + 60 // inner UDP, VXLAN, a 60-byte frame
	buf := make([]byte, esp.SealedLen(n))
	esp.PutUDP(buf[esp.Headroom:esp.Headroom+n], 4789, 4789)
	sealed, err := sa.Seal(buf, n)
	if err != nil {
		t.Fatal(err)
	}
	explain := func(payload []byte) string {
		var out bytes.Buffer
		p := &printer{w: bufio.NewWriter(&out)}
		p.frame(encap(t, false, esp.Port, payload, nil), 0, layers.LayerTypeEthernet)
		p.w.Flush()
		return out.String()
	}
	got := explain(sealed)
	for _, want := range []string{"SPI 0x00001002", "sequence number 1", "IV", "encrypted", "ICV", "42-45 bytes more"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
	if got := explain([]byte{0xff}); !strings.Contains(got, "NAT keepalive") {
		t.Errorf("keepalive:\n%s", got)
	}
	if got := explain(sealed[:20]); !strings.Contains(got, "short") {
		t.Errorf("short packet:\n%s", got)
	}
}
