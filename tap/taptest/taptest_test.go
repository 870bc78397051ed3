package taptest

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
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
