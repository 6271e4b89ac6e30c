package main

import (
	"context"
	"errors"
	"io"
)

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("not yet")
}
