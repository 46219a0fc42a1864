package provision

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		text   string
		class  Class
		reason string
	}{
		{"Error: Error acquiring the state lock\n\nLock Info:\n  ID: 1c2f...", Transient, "state lock held"},
		{"Error: creating EC2 Instance: operation error EC2: RunInstances, https response error StatusCode: 503, RequestID: x, api error RequestLimitExceeded: Request limit exceeded.", Transient, "throttled"},
		{"Error: reading S3 Bucket: operation error S3: HeadBucket, api error RequestLimitExceeded", Transient, "throttled"},
		{"Error: waiting for Virtual Network: Code=\"TooManyRequests\" Message=\"throttled\"", Transient, "throttled"},
		{"Error: googleapi: Error 429: Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'", Permanent, "quota exceeded"},
		{"Error: Post \"https://management.azure.com/...\": read tcp 10.0.0.1:4242->1.2.3.4:443: read: connection reset by peer", Transient, "connection reset"},
		{"Error: Plugin did not respond\n\nThe plugin encountered an error, and failed to respond to the plugin.(*GRPCProvider).ApplyResourceChange call.", Transient, "provider plugin crashed"},
		{"Error: Unsupported argument\n\n  on main.tf line 3: An argument named \"regoin\" is not expected here.", Permanent, "invalid configuration"},
		{"Error: creating Resource Group: StatusCode=403 Code=\"AuthorizationFailed\" Message=\"does not have authorization\"", Permanent, "authorization denied"},
		{"Error: api error AccessDenied: User is not authorized to perform: iam:CreateRole (Rate exceeded)", Permanent, "authorization denied"},
		{"Error: creating Storage Account: StorageAccountAlreadyTaken: The storage account named x already exists", Permanent, "resource conflict"},
		{"Error: something nobody has seen before", Permanent, "not known to be transient"},
		{"panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV]\n\ngoroutine 1 [running]:", Transient, "terraform or a provider crashed"},
	} {
		class, reason := Classify(tc.text)
		if class != tc.class || reason != tc.reason {
			t.Errorf("%q: %s (%s), want %s (%s)", tc.text, class, reason, tc.class, tc.reason)
		}
	}
	var f *Failure
	if err := classified(errors.New("Error: Too Many Requests")); !errors.As(err, &f) || !f.Transient() || f.ErrorClass() != "transient" {
		t.Fatalf("%v", err)
	}
}

// FuzzClassify: any text classifies without panicking, into one of the two classes, with a reason.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"", "Error: Error acquiring the state lock", "429 Too Many Requests", "AccessDenied", "\x00\xff", "panic: runtime error"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		class, reason := Classify(text)
		if (class != Transient && class != Permanent) || reason == "" {
			t.Fatalf("%q: %q %q", text, class, reason)
		}
	})
}
