package apiserver

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// tokenFile authenticates static bearer tokens from a CSV file in
// kube-apiserver's --token-auth-file format, token,user,uid,"group1,group2",
// with one optional fifth column eventpipe adds: the user's extras as
// "key=value" pairs, "iam.miloapis.com/parent-type=Project,iam.miloapis.com/parent-name=alpha".
// kube-apiserver's format has no extras, and without them a standalone
// server could not know a tenant's scope.
type tokenFile struct {
	users map[string]*user.DefaultInfo
}

// readTokenFile parses the file at path.
func readTokenFile(path string) (*tokenFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseTokenFile(f)
}

// parseTokenFile parses a token file; errors name the line.
func parseTokenFile(r io.Reader) (*tokenFile, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	tf := &tokenFile{users: map[string]*user.DefaultInfo{}}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv's errors name the line
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < 3 || len(rec) > 5 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,\"groups\"[,\"extras\"]], got %d columns", line, len(rec))
		}
		token, name := rec[0], rec[1]
		if token == "" {
			return nil, fmt.Errorf("line %d: the token is empty", line)
		}
		if name == "" {
			return nil, fmt.Errorf("line %d: the user name is empty", line)
		}
		if _, dup := tf.users[token]; dup {
			return nil, fmt.Errorf("line %d: the token of user %q is already used on an earlier line", line, name)
		}
		u := &user.DefaultInfo{Name: name, UID: rec[2]}
		if len(rec) > 3 {
			for _, g := range strings.Split(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		if len(rec) > 4 {
			for _, kv := range strings.Split(rec[4], ",") {
				kv = strings.TrimSpace(kv)
				if kv == "" {
					continue
				}
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return nil, fmt.Errorf("line %d: extra %q is not key=value", line, kv)
				}
				if u.Extra == nil {
					u.Extra = map[string][]string{}
				}
				u.Extra[k] = append(u.Extra[k], v)
			}
		}
		tf.users[token] = u
	}
	return tf, nil
}

// AuthenticateToken implements authenticator.Token.
func (tf *tokenFile) AuthenticateToken(_ context.Context, token string) (*authenticator.Response, bool, error) {
	u, ok := tf.users[token]
	if !ok {
		return nil, false, nil
	}
	return &authenticator.Response{User: u}, true, nil
}
