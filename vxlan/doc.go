// Package vxlan implements the VXLAN header of RFC 7348 and the underlay UDP
// socket that carries VXLAN packets between hosts.
//
// The header is a typed byte slice with accessors (see Header); Encode and
// Decode are hand-written and never allocate, so they can sit on the per-frame
// path. Conn is the UDP socket bound to a host's VTEP address.
package vxlan
