package config

import (
	"strings"
	"testing"
)

// API keys over plain HTTP are worth a warning unless the listener is on loopback.
func TestRestAuthWarnings(t *testing.T) {
	const router = `
rest_listener: {addr: [%s, 8000], session_uri: "http://h:8000", api_keys_file: keys}
storage: {url: "sqlite:///r.db"}
`
	for host, warn := range map[string]bool{"0.0.0.0": true, "192.0.2.1": true, "localhost": false, "127.0.0.1": false, `"::1"`: false} {
		r, warns, err := ParseRouter("router.yaml", []byte(strings.Replace(router, "%s", host, 1)))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(warns.String(), "router.yaml:2:16: rest_listener: API keys would cross the network in clear text: set cert and key")
		if got != warn || r.RestListener.APIKeysFile != "keys" {
			t.Errorf("%s: warnings %q", host, warns)
		}
	}
}
