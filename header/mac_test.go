package header

import (
	"encoding/json"
	"testing"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    MAC
		wantErr bool
	}{
		{"02:00:5e:10:00:01", MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}, false},
		{"02-00-5E-10-00-01", MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}, false},
		{"0200.5e10.0001", MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}, false},
		{"ff:ff:ff:ff:ff:ff", BroadcastMAC, false},
		{"", MAC{}, true},
		{"02:00:5e:10:00", MAC{}, true},
		{"02:00:5e:10:00:01:02:03", MAC{}, true}, // EUI-64
		{"zz:00:5e:10:00:01", MAC{}, true},
	}
	for _, tt := range tests {
		got, err := ParseMAC(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMACText(t *testing.T) {
	m := MAC{0x02, 0xab, 0, 0, 0, 0x0f}
	if s := m.String(); s != "02:ab:00:00:00:0f" {
		t.Fatalf("String = %q", s)
	}
	b, err := json.Marshal(map[string]MAC{"mac": m})
	if err != nil || string(b) != `{"mac":"02:ab:00:00:00:0f"}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var back map[string]MAC
	if err := json.Unmarshal(b, &back); err != nil || back["mac"] != m {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	var z MAC = m
	if err := z.UnmarshalText(nil); err != nil || !z.IsZero() {
		t.Fatalf("empty text gives %v, %v", z, err)
	}
	if err := z.UnmarshalText([]byte("nope")); err == nil {
		t.Fatal("UnmarshalText accepted garbage")
	}
}

func TestMACClasses(t *testing.T) {
	tests := []struct {
		m                      MAC
		broadcast, multi, zero bool
	}{
		{BroadcastMAC, true, true, false},
		{MAC{0x01, 0x00, 0x5e, 0, 0, 1}, false, true, false},
		{MAC{0x33, 0x33, 0, 0, 0, 1}, false, true, false},
		{MAC{0x02, 0, 0, 0, 0, 1}, false, false, false},
		{MAC{}, false, false, true},
	}
	for _, tt := range tests {
		if tt.m.IsBroadcast() != tt.broadcast || tt.m.IsMulticast() != tt.multi || tt.m.IsZero() != tt.zero {
			t.Errorf("%v: broadcast %v multicast %v zero %v", tt.m, tt.m.IsBroadcast(), tt.m.IsMulticast(), tt.m.IsZero())
		}
	}
}
