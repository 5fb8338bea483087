package router

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of the API; a test holds it to the routes table.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI is GET /openapi.json.
func (s *Service) openAPI(w http.ResponseWriter, r *http.Request) error {
	writeBody(w, http.StatusOK, openAPIDoc)
	return nil
}
