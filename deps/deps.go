// Package deps pins modules that the project is about to use, so that
// parallel work on several packages shares one go.mod. It is removed once
// every module here is imported by real code.
package deps

import (
	_ "github.com/miekg/dns"
)
