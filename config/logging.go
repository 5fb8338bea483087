package config

import (
	"log/slog"
	"strings"

	"gopkg.in/yaml.v3"
)

// Logging is what Koukan takes from the logging section. That section is a Python
// logging.config.dictConfig block, kept so that configs written for the reference load; any
// structure is accepted, and only the log level is read.
type Logging struct {
	// Level is the root logger's level, else the most verbose handler level, else INFO.
	Level slog.Level
}

var defaultLogging = Logging{Level: slog.LevelInfo}

// pythonLevels are the numbers of Python's named log levels.
var pythonLevels = map[string]int{
	"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "INFO": 20, "DEBUG": 10, "NOTSET": 0,
}

func (d *decoder) logging(p path, n *yaml.Node) Logging {
	lg := defaultLogging
	if n = deref(n); isNull(n) {
		return lg
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "expected a mapping (a Python logging dictConfig), got %s", describe(n))
		return lg
	}
	var root, handler *slog.Level
	for _, e := range d.entries(p, n) {
		switch k, v := e.k.Value, deref(e.v); k {
		case "root":
			root = d.levelOf(p.key(k), v)
		case "loggers":
			d.mapping(p.key(k), v, func(lk, lv *yaml.Node) {
				if lk.Value == "" {
					root = d.levelOf(p.key(k).item(""), lv)
				}
			})
		case "handlers":
			d.mapping(p.key(k), v, func(hk, hv *yaml.Node) {
				if l := d.levelOf(p.key(k).key(hk.Value), hv); l != nil && (handler == nil || *l < *handler) {
					handler = l
				}
			})
		}
	}
	switch {
	case root != nil:
		lg.Level = *root
	case handler != nil:
		lg.Level = *handler
	}
	return lg
}

// levelOf returns the level of a logger or handler mapping, or nil if it sets none.
func (d *decoder) levelOf(p path, n *yaml.Node) *slog.Level {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for _, e := range d.entries(p, n) {
		if e.k.Value == "level" {
			return d.pythonLevel(p.key("level"), deref(e.v))
		}
	}
	return nil
}

// pythonLevel maps a Python level (a name or a number) to slog, where Python's 10-step
// scale becomes slog's 4-step one: DEBUG -4, INFO 0, WARNING 4, ERROR 8, CRITICAL 12.
func (d *decoder) pythonLevel(p path, n *yaml.Node) *slog.Level {
	num, ok := pythonLevels[strings.ToUpper(n.Value)]
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		ok = n.Decode(&num) == nil
	}
	if !ok || n.Kind != yaml.ScalarNode {
		d.errorf(n, p, "expected a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL), got %s", describe(n))
		return nil
	}
	l := slog.Level((num - 20) * 4 / 10)
	return &l
}
