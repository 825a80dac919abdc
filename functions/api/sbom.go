package api

import (
	"bytes"
	"net/http"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sbom"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// sbom answers an image's SBOM, made from the inventory its scan stored
// (nothing is pulled).
func (a *API) sbom(r *request) (any, error) {
	digest, err := r.digest()
	if err != nil {
		return nil, err
	}
	format, err := r.oneOf("format", sbom.Formats()...)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = sbom.CycloneDX
	}
	img, err := a.getImage(r, digest)
	if err != nil {
		return nil, err
	}
	chunks, err := vulnstore.InventoryChunks(r.Context(), a.st, digest)
	if err != nil {
		return nil, err
	}
	if len(chunks) == 0 || img.Status == model.ImageFailed {
		return nil, &Error{Status: http.StatusNotFound, Message: "no package inventory is stored for " + digest + " (status " + img.Status + ")"}
	}
	inv, err := model.AssembleInventory(chunks)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := sbom.Write(&b, format, img, inv, sbom.Options{}); err != nil {
		return nil, err
	}
	return document{contentType: sbom.ContentType(format), body: b.Bytes()}, nil
}
