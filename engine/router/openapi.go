package router

import (
	_ "embed"
	"net/http"

	"github.com/koukan/koukan/engine/httpapi"
)

// openAPIDoc describes every route of the API; a test holds it to the routes table.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI is GET /openapi.json.
func (s *Service) openAPI(w http.ResponseWriter, r *http.Request) error {
	httpapi.WriteBody(w, http.StatusOK, openAPIDoc)
	return nil
}
