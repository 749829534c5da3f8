//go:build !linux

package main

import (
	"errors"
	"os"
)

// noEcho is implemented for Linux terminals only; elsewhere the password
// comes from $ETCDGW_PASSWORD.
func noEcho(*os.File) (func(), error) { return nil, errors.New("not supported on this system") }
