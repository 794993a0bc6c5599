package activity

import (
	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/types"
)

func newUID() types.UID { return types.UID(uuid.NewString()) }
