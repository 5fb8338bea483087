package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// manifest is the part of a Kubernetes object the checks read.
type manifest struct {
	Kind     string
	Metadata struct{ Name string }
	Data     map[string]string
	Spec     struct {
		// Selector is the labels a Service selects, or {matchLabels: ...} for the rest.
		Selector map[string]any
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				Containers []struct {
					Name  string
					Args  []string
					Ports []struct {
						Name          string
						ContainerPort int `yaml:"containerPort"`
					}
					LivenessProbe  *probe `yaml:"livenessProbe"`
					ReadinessProbe *probe `yaml:"readinessProbe"`
				}
			}
		}
		Ports []struct {
			Name       string
			Port       int
			TargetPort string `yaml:"targetPort"`
		}
	}
}

// selects is the label selector of m.
func (m manifest) selects() map[string]string {
	sel := m.Spec.Selector
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		out[k], _ = v.(string)
	}
	return out
}

type probe struct {
	HTTPGet struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in config/kubernetes")
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if m.Kind == "" || m.Metadata.Name == "" {
				t.Errorf("%s: an object without kind or name", f)
			}
			out = append(out, m)
		}
	}
	return out
}

// The Kubernetes manifests hold together: the configs in the ConfigMap load, containers
// expose the ports those configs listen on, probes hit /healthz and /readyz on a declared
// port, and Services and PodDisruptionBudgets select the Deployments' pods.
func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t)
	var cm *manifest
	byKind := map[string][]manifest{}
	for i := range ms {
		byKind[ms[i].Kind] = append(byKind[ms[i].Kind], ms[i])
		if ms[i].Kind == "ConfigMap" && ms[i].Metadata.Name == "koukan-config" {
			cm = &ms[i]
		}
	}
	if cm == nil {
		t.Fatal("no koukan-config ConfigMap")
	}
	router, _, err := ParseRouter("router.yaml", []byte(cm.Data["router.yaml"]))
	if err != nil {
		t.Fatalf("router.yaml in the ConfigMap: %v", err)
	}
	gateway, _, err := ParseGateway("gateway.yaml", []byte(cm.Data["gateway.yaml"]))
	if err != nil {
		t.Fatalf("gateway.yaml in the ConfigMap: %v", err)
	}
	wantPorts := map[string][]int{"router": {router.RestListener.Addr.Port}, "gateway": {gateway.RestListener.Addr.Port}}
	for _, s := range gateway.SMTPServices {
		wantPorts["gateway"] = append(wantPorts["gateway"], s.Addr.Port)
	}
	if len(byKind["Deployment"]) != 2 || len(byKind["Service"]) != 2 || len(byKind["PodDisruptionBudget"]) != 2 {
		t.Errorf("objects: %d Deployments, %d Services, %d PodDisruptionBudgets", len(byKind["Deployment"]), len(byKind["Service"]), len(byKind["PodDisruptionBudget"]))
	}
	for _, d := range byKind["Deployment"] {
		labels := d.Spec.Template.Metadata.Labels
		for k, v := range d.selects() {
			if labels[k] != v {
				t.Errorf("%s: the selector does not select its own pods", d.Metadata.Name)
			}
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			ports := map[string]int{}
			var numbers []int
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
				numbers = append(numbers, p.ContainerPort)
			}
			for _, want := range wantPorts[c.Name] {
				if !slices.Contains(numbers, want) {
					t.Errorf("%s: the config listens on %d, the container does not expose it (%v)", d.Metadata.Name, want, numbers)
				}
			}
			for _, p := range []struct {
				what string
				p    *probe
				path string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if p.p == nil || p.p.HTTPGet.Path != p.path || ports[p.p.HTTPGet.Port] == 0 {
					t.Errorf("%s: %s probe %+v, want GET %s on a declared port", d.Metadata.Name, p.what, p.p, p.path)
				}
			}
			if len(c.Args) < 3 || c.Args[0] != c.Name || !strings.HasSuffix(c.Args[2], "/"+c.Name+".yaml") {
				t.Errorf("%s: args %q", d.Metadata.Name, c.Args)
			}
			if c.Name == "router" && !slices.Contains(c.Args, "--session-uri") {
				t.Errorf("router replicas need their own --session-uri")
			}
		}
		for _, kind := range []string{"Service", "PodDisruptionBudget"} {
			matched := 0
			for _, other := range byKind[kind] {
				if sel := other.selects(); len(sel) > 0 && selectsAll(sel, labels) {
					matched++
				}
			}
			if matched != 1 {
				t.Errorf("%s: %d %ss select its pods, want 1", d.Metadata.Name, matched, kind)
			}
		}
	}
}

func selectsAll(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
