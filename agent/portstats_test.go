package agent

import (
	"reflect"
	"testing"
	"time"

	"vxswitch/api"
	vswitch "vxswitch/switch"
	"vxswitch/tap/taptest"
)

// TestPortStats: the API's port counters are the switch's, with the
// network's name from the view: a frame from c1 to c2 counts as read on
// c1 and written on c2.
func TestPortStats(t *testing.T) {
	sw := vswitch.New(vswitch.Config{})
	t.Cleanup(func() { sw.Close() })
	sw.SetView(&vswitch.View{Networks: map[uint32]*vswitch.Network{100: {VNI: 100, Name: "web", MTU: 1500}}})
	mac1, mac2 := vswitch.MAC{2, 0, 0, 0, 0, 1}, vswitch.MAC{2, 0, 0, 0, 0, 2}
	c1, c2 := taptest.NewOffload("c1"), taptest.New("c2")
	if err := sw.AddPort("c2", 100, mac2, c2); err != nil {
		t.Fatal(err)
	}
	if err := sw.AddPort("c1", 100, mac1, c1); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 100)
	copy(frame[0:6], mac2[:])
	copy(frame[6:12], mac1[:])
	frame[12], frame[13] = 0x08, 0x00
	for range 3 {
		c1.InjectFrame(frame)
		if _, ok := c2.Next(5 * time.Second); !ok {
			t.Fatal("c2 did not get the frame from c1")
		}
	}
	want := []api.PortStats{
		{Name: "c1", Network: "web", RxFrames: 3, RxBytes: 300},
		{Name: "c2", Network: "web", TxFrames: 3, TxBytes: 300},
	}
	if got := apiPortStats(sw.PortStats()); !reflect.DeepEqual(got, want) {
		t.Errorf("port stats = %+v, want %+v", got, want)
	}
}
