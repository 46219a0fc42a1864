package azuritetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"time"
)

// signSharedKey signs req with account a's key by Azure Storage's Shared Key scheme: an HMAC of
// the verb, the standard headers, the x-ms-* headers and the account's resource.
func signSharedKey(req *http.Request, a Account) error {
	req.Header.Set("x-ms-date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", "2021-08-06")
	length := ""
	if req.ContentLength > 0 {
		length = req.Header.Get("Content-Length")
	}
	std := []string{req.Method, req.Header.Get("Content-Encoding"), req.Header.Get("Content-Language"), length,
		req.Header.Get("Content-MD5"), req.Header.Get("Content-Type"), "", req.Header.Get("If-Modified-Since"),
		req.Header.Get("If-Match"), req.Header.Get("If-None-Match"), req.Header.Get("If-Unmodified-Since"), req.Header.Get("Range")}
	var ms []string
	for k, v := range req.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-ms-") {
			ms = append(ms, lk+":"+strings.TrimSpace(strings.Join(v, ",")))
		}
	}
	sort.Strings(ms)
	resource := "/" + a.Name + req.URL.EscapedPath()
	q := req.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		resource += "\n" + strings.ToLower(k) + ":" + strings.Join(vals, ",")
	}
	toSign := strings.Join(std, "\n") + "\n" + strings.Join(ms, "\n") + "\n" + resource
	key, err := base64.StdEncoding.DecodeString(a.Key)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toSign))
	req.Header.Set("Authorization", "SharedKey "+a.Name+":"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return nil
}
