package provision

import (
	"errors"
	"strings"
)

// Class is what a failed Terraform run says about trying again.
type Class string

const (
	// Transient failures may pass on their own: a state lock held by another process, API
	// throttling, a provider's 5xx, a reset connection, a timeout, a provider plugin crashing.
	Transient Class = "transient"
	// Permanent failures will not: invalid configuration, authorization denied, quota exceeded,
	// a resource conflict; and anything not known to be transient.
	Permanent Class = "permanent"
)

// Failure is a failed Terraform run with its class and the marker that decided it.
type Failure struct {
	Class  Class
	Reason string // e.g. "throttled (429)", "authorization denied"
	Err    error
	// Refused: the run was stopped before Terraform changed anything (a plan review refused it).
	Refused bool
}

// Untouched says the target was not changed by this failed run: nothing to roll back.
func (f *Failure) Untouched() bool { return f.Refused }

func (f *Failure) Error() string   { return f.Err.Error() }
func (f *Failure) Unwrap() error   { return f.Err }
func (f *Failure) Transient() bool { return f.Class == Transient }

// ErrorReason is what decided the class, for the journal.
func (f *Failure) ErrorReason() string { return f.Reason }

// ErrorClass is the failure's class ("transient" or "permanent"), for the journal.
func (f *Failure) ErrorClass() string { return string(f.Class) }

// marker is a piece of diagnostic text and what it means. Markers are matched case-insensitively;
// permanent ones are checked first, so "AccessDenied ... Rate exceeded" is not retried.
type marker struct {
	text, reason string
}

var permanentMarkers = []marker{
	{"unsupported argument", "invalid configuration"}, {"missing required argument", "invalid configuration"},
	{"reference to undeclared", "invalid configuration"}, {"invalid value for", "invalid configuration"},
	{"unsupported attribute", "invalid configuration"}, {"invalid reference", "invalid configuration"},
	{"error: invalid", "invalid configuration"}, {"no value for required variable", "invalid configuration"},
	{"argument or block definition required", "invalid configuration"}, {"unsupported block type", "invalid configuration"},
	{"authorizationfailed", "authorization denied"}, {"accessdenied", "authorization denied"}, {"access denied", "authorization denied"},
	{"unauthorizedoperation", "authorization denied"}, {"authorizationerror", "authorization denied"}, {"403 forbidden", "authorization denied"},
	{"statuscode=403", "authorization denied"}, {"status code: 403", "authorization denied"}, {"permission denied", "authorization denied"},
	{"invalidclienttokenid", "authorization denied"}, {"expiredtoken", "credentials expired"}, {"aadsts", "authorization denied"},
	{"quotaexceeded", "quota exceeded"}, {"quota exceeded", "quota exceeded"}, {"servicequotaexceeded", "quota exceeded"},
	{"limitexceededexception", "quota exceeded"}, {"operationnotallowed", "quota exceeded"},
	{"already exists", "resource conflict"}, {"resourceinuse", "resource conflict"}, {"conflict", "resource conflict"}, {"statuscode=409", "resource conflict"},
}

var transientMarkers = []marker{
	{"error acquiring the state lock", "state lock held"}, {"state lock", "state lock held"}, {"conditionalcheckfailedexception", "state lock held"},
	{"429", "throttled (429)"}, {"too many requests", "throttled"}, {"toomanyrequests", "throttled"}, {"throttling", "throttled"},
	{"throttled", "throttled"}, {"requestlimitexceeded", "throttled"}, {"rate exceeded", "throttled"}, {"slowdown", "throttled"},
	{"ratelimitexceeded", "throttled"}, {"resource_exhausted", "throttled"},
	{"500 internal server error", "provider 5xx"}, {"502 bad gateway", "provider 5xx"}, {"503 service unavailable", "provider 5xx"},
	{"504 gateway timeout", "provider 5xx"}, {"statuscode=500", "provider 5xx"}, {"statuscode=502", "provider 5xx"}, {"statuscode=503", "provider 5xx"},
	{"statuscode=504", "provider 5xx"}, {"status code: 5", "provider 5xx"}, {"internalerror", "provider 5xx"}, {"serviceunavailable", "provider 5xx"},
	{"internal server error", "provider 5xx"}, {"service unavailable", "provider 5xx"},
	{"connection reset by peer", "connection reset"}, {"connection refused", "connection refused"}, {"broken pipe", "connection reset"},
	{"i/o timeout", "timeout"}, {"tls handshake timeout", "timeout"}, {"context deadline exceeded", "timeout"}, {"timeout while waiting", "timeout"},
	{"request timeout", "timeout"}, {"no such host", "name resolution"},
	{"plugin did not respond", "provider plugin crashed"}, {"the plugin encountered an error", "provider plugin crashed"},
	{"plugin exited unexpectedly", "provider plugin crashed"}, {"failed to instantiate provider", "provider plugin crashed"},
	{"rpc error: code = unavailable", "provider plugin crashed"}, {"panic: ", "provider plugin crashed"},
	{"signal: killed", "terraform process died"}, {"signal: segmentation fault", "terraform process died"},
}

// Classify reads a failed run's diagnostics and says whether trying again may help.
func Classify(text string) (Class, string) {
	low := strings.ToLower(text)
	// A crash's own text (a Go panic's "runtime error: invalid memory address") must not read as
	// a configuration error: a crash is what it is, whatever it says.
	if strings.Contains(low, "panic: ") && strings.Contains(low, "goroutine ") {
		return Transient, "terraform or a provider crashed"
	}
	for _, m := range permanentMarkers {
		if strings.Contains(low, m.text) {
			return Permanent, m.reason
		}
	}
	for _, m := range transientMarkers {
		if strings.Contains(low, m.text) {
			return Transient, m.reason
		}
	}
	return Permanent, "not known to be transient"
}

// classified wraps a Terraform failure with its class (an interrupted run is left as it is: the
// caller knows it asked for the interruption).
func classified(err error) error {
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return err
	}
	class, reason := Classify(err.Error())
	return &Failure{Class: class, Reason: reason, Err: err}
}
