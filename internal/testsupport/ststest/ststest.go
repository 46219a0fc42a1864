// Package ststest is a stand-in for AWS STS on loopback, answering the Query API in its documented
// XML wire format, for tests that run the real AWS SDK (or the real rollout binary) against it.
package ststest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server answers STS's Query API in its documented XML: GetCallerIdentity for whoever signed
// the request (by access key id), and AssumeRole, which hands out the role's own keys.
type Server struct {
	*httptest.Server
	mu        sync.Mutex
	Throttle  int               // answer this many requests with Throttling first
	Arns      map[string]string // access key id -> caller ARN
	Fail      string            // an error code to answer with (e.g. ExpiredToken)
	Requests  []string          // Action and the SigV4 credential scope of each request
	Externals []string          // ExternalId of each AssumeRole
	// WebIdentityToken is the OIDC token AssumeRoleWithWebIdentity accepts ("": none).
	WebIdentityToken string
}

// issue answers an AssumeRole* action with fresh keys for role, which GetCallerIdentity then
// knows as the assumed role.
func (s *Server) issue(w http.ResponseWriter, action, role, session string) {
	s.mu.Lock()
	key := fmt.Sprintf("ASIA%04d", len(s.Arns))
	parts := strings.Split(role, ":")
	if len(parts) < 6 {
		s.mu.Unlock()
		w.WriteHeader(400)
		return
	}
	arn := fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", parts[1], parts[4], strings.TrimPrefix(parts[5], "role/"), session)
	s.Arns[key] = arn
	s.mu.Unlock()
	fmt.Fprintf(w, `<%sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%sResult><Credentials>
<AccessKeyId>%s</AccessKeyId><SecretAccessKey>chain-secret-%s</SecretAccessKey><SessionToken>chain-token-%s</SessionToken>
<Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>
</%sResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></%sResponse>`,
		action, action, key, key, key, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), arn, action, action)
}

// New starts a server; it stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{Arns: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	auth := r.Header.Get("Authorization")
	key, scope := "", ""
	if i := strings.Index(auth, "Credential="); i >= 0 {
		cred := strings.SplitN(strings.TrimPrefix(auth[i:], "Credential="), ",", 2)[0]
		parts := strings.SplitN(cred, "/", 2)
		key = parts[0]
		if len(parts) == 2 {
			scope = parts[1]
		}
	}
	s.mu.Lock()
	s.Requests = append(s.Requests, form.Get("Action")+" "+scope)
	throttled := s.Throttle > 0
	if throttled {
		s.Throttle--
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	errorXML := func(status int, code, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, code, msg)
	}
	switch {
	case throttled:
		errorXML(400, "Throttling", "Rate exceeded")
	case s.Fail == "ExpiredToken":
		errorXML(400, "ExpiredToken", "The security token included in the request is expired")
	case form.Get("Action") == "AssumeRole":
		s.mu.Lock()
		s.Externals = append(s.Externals, form.Get("ExternalId"))
		s.mu.Unlock()
		s.issue(w, "AssumeRole", form.Get("RoleArn"), form.Get("RoleSessionName"))
	case form.Get("Action") == "AssumeRoleWithWebIdentity": // unsigned: the token is the credential
		if s.WebIdentityToken == "" || form.Get("WebIdentityToken") != s.WebIdentityToken {
			errorXML(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
			return
		}
		s.issue(w, "AssumeRoleWithWebIdentity", form.Get("RoleArn"), form.Get("RoleSessionName"))
	case form.Get("Action") == "GetCallerIdentity":
		s.mu.Lock()
		arn, ok := s.Arns[key]
		s.mu.Unlock()
		if !ok {
			errorXML(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
			return
		}
		account := strings.Split(arn, ":")[4]
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>
<Arn>%s</Arn><UserId>AIDA1</UserId><Account>%s</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>r-3</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, arn, account)
	default:
		errorXML(400, "InvalidAction", "unknown action")
	}
}

// Requested is a copy of the requests so far: each one's Action and SigV4 credential scope.
func (s *Server) Requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Requests...)
}

// Set says who an access key id is (an ARN), safely while the server runs.
func (s *Server) Set(key, arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Arns[key] = arn
}
