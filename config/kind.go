package config

import "gopkg.in/yaml.v3"

// Kind is which program a config file is for.
type Kind string

const (
	KindRouter  Kind = "router"
	KindGateway Kind = "gateway"
	KindServe   Kind = "serve"
)

// DetectKind guesses a config file's kind from its top-level keys, for tools such as
// `koukan check` that are handed files without being told what they are: router: or
// gateway: sections make an all-in-one serve file, SMTP sections a gateway, anything else a
// router. Syntax errors are left for the real parse to report.
func DetectKind(data []byte) Kind {
	var top map[string]yaml.Node
	if yaml.Unmarshal(data, &top) != nil {
		return KindRouter
	}
	if _, ok := top["router"]; ok {
		return KindServe
	}
	if _, ok := top["gateway"]; ok {
		return KindServe
	}
	for _, k := range []string{"smtp_listener", "smtp_output", "rest_output"} {
		if _, ok := top[k]; ok {
			return KindGateway
		}
	}
	return KindRouter
}

// Check validates a config of the given kind, for linting: the same checks the servers run.
// It returns what the file configures as a Serve: the router, the gateway or both (nil
// when the file has errors), for the checks that read further files (scripts, API keys).
func Check(kind Kind, name string, data []byte) (*Serve, Warnings, error) {
	switch kind {
	case KindServe:
		return ParseServe(name, data)
	case KindGateway:
		g, warns, err := ParseGateway(name, data)
		if g == nil {
			return nil, warns, err
		}
		return &Serve{Gateway: g}, warns, err
	}
	r, warns, err := ParseRouter(name, data)
	if r == nil {
		return nil, warns, err
	}
	return &Serve{Router: r}, warns, err
}
