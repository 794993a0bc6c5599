package tiers_test

import (
	"errors"

	"github.com/eventpipe/eventpipe/internal/scope"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func scopePlatform() scope.Scope { return scope.Platform }
