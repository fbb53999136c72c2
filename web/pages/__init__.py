"""One module a page: each an APIRouter of thin handlers over core functions."""
