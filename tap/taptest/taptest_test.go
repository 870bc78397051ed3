package taptest

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"vxswitch/tap"
)

func TestInjectRead(t *testing.T) {
	d := New("eth0")
	if d.Name() != "eth0" {
		t.Fatalf("Name = %q", d.Name())
	}
	frame := []byte{1, 2, 3, 4}
	d.Inject(frame)
	frame[0] = 9 // Inject must have copied
	buf := make([]byte, 10)
	n, err := d.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte{1, 2, 3, 4}) {
		t.Fatalf("Read = % x, %v", buf[:n], err)
	}
	d.Inject([]byte{1, 2, 3, 4, 5})
	small := make([]byte, 2)
	if n, _ := d.Read(small); n != 2 || !bytes.Equal(small, []byte{1, 2}) {
		t.Fatalf("truncated Read = %d % x", n, small)
	}
}

func TestWriteNextWritten(t *testing.T) {
	d := New("eth0")
	if _, ok := d.Next(time.Millisecond); ok {
		t.Fatal("Next returned a frame before any Write")
	}
	a, b := []byte{0xa}, []byte{0xb, 0xb}
	d.Write(a)
	d.Write(b)
	a[0] = 0
	if f, ok := d.Next(time.Second); !ok || !bytes.Equal(f, []byte{0xa}) {
		t.Fatalf("first Next = % x %v", f, ok)
	}
	if f, ok := d.Next(time.Second); !ok || !bytes.Equal(f, b) {
		t.Fatalf("second Next = % x %v", f, ok)
	}
	if w := d.Written(); len(w) != 2 || !bytes.Equal(w[0], []byte{0xa}) {
		t.Fatalf("Written = % x", w)
	}
}

func TestNextWaitsForWrite(t *testing.T) {
	d := New("eth0")
	go d.Write([]byte{7})
	if f, ok := d.Next(5 * time.Second); !ok || !bytes.Equal(f, []byte{7}) {
		t.Fatalf("Next = % x %v", f, ok)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	d := New("eth0")
	errc := make(chan error, 1)
	go func() {
		_, err := d.Read(make([]byte, 10))
		errc <- err
	}()
	d.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := d.Write([]byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if !d.Closed() || d.Close() != nil {
		t.Fatal("Closed/second Close wrong")
	}
	d.Inject([]byte{1}) // must not block on a closed device
}

func TestOffloadDevice(t *testing.T) {
	plain := New("eth0")
	if plain.Offload() {
		t.Fatal("New made a device with offloads")
	}
	if _, err := plain.ReadVnetIdle(make([]byte, 20), nil); !errors.Is(err, tap.ErrNoOffload) {
		t.Errorf("ReadVnetIdle on a plain device: %v", err)
	}
	if _, err := plain.WriteVnet(make([]byte, 20)); !errors.Is(err, tap.ErrNoOffload) {
		t.Errorf("WriteVnet on a plain device: %v", err)
	}

	d := NewOffload("eth0")
	if !d.Offload() {
		t.Fatal("NewOffload made a device without offloads")
	}
	idles := 0
	done := make(chan int)
	go func() {
		buf := make([]byte, 64)
		n, _ := d.ReadVnetIdle(buf, func() { idles++ })
		done <- n
	}()
	time.Sleep(10 * time.Millisecond)
	d.InjectFrame([]byte{1, 2, 3})
	if n := <-done; n != tap.VnetHdrLen+3 {
		t.Fatalf("ReadVnetIdle = %d bytes, want the vnet header and 3", n)
	}
	if idles != 1 {
		t.Errorf("idle called %d times before the wait, want 1", idles)
	}
	d.Write([]byte{7})
	d.WriteVnet(append(make([]byte, tap.VnetHdrLen), 8))
	want := [][]byte{append(make([]byte, tap.VnetHdrLen), 7), append(make([]byte, tap.VnetHdrLen), 8)}
	if got := d.Written(); len(got) != 2 || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
		t.Errorf("Written = % x, want % x", got, want)
	}
	d.CountOnly()
	d.Write([]byte{9})
	if len(d.Written()) != 2 || d.Writes() != 3 {
		t.Errorf("after CountOnly: %d recorded, %d writes; want 2 and 3", len(d.Written()), d.Writes())
	}
}

// WaitIdle returns once the reader has handled what was injected (it is
// back waiting, after its idle function), and not before.
func TestWaitIdle(t *testing.T) {
	d := NewOffload("x")
	release := make(chan struct{})
	var handled, idles []int
	go func() {
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			if _, err := d.ReadVnetIdle(buf, func() { idles = append(idles, i) }); err != nil {
				return
			}
			<-release // the reader is busy with the packet
			handled = append(handled, i)
		}
	}()
	t.Cleanup(func() { d.Close() })
	if !d.WaitIdle(5 * time.Second) {
		t.Fatal("a reader waiting with nothing injected is not idle")
	}
	d.InjectFrame([]byte{1})
	d.InjectFrame([]byte{2})
	if d.WaitIdle(50 * time.Millisecond) {
		t.Fatal("WaitIdle returned while the reader was busy")
	}
	close(release)
	if !d.WaitIdle(5 * time.Second) {
		t.Fatal("WaitIdle did not return after the reader handled both packets")
	}
	// The reader's writes happened before WaitIdle returned (no race).
	if len(handled) != 2 || len(idles) != 2 || idles[1] != 2 {
		t.Errorf("handled %v, idle calls before reads %v; want 2 handled and the idle function called before waiting again", handled, idles)
	}
}
