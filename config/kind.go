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
// It returns the router config (the router: section of a serve file; nil for a gateway's),
// whose use of scripts the Lua runtime checks.
func Check(kind Kind, name string, data []byte) (*Router, Warnings, error) {
	switch kind {
	case KindServe:
		s, warns, err := ParseServe(name, data)
		if s == nil {
			return nil, warns, err
		}
		return s.Router, warns, err
	case KindGateway:
		_, warns, err := ParseGateway(name, data)
		return nil, warns, err
	}
	return ParseRouter(name, data)
}
