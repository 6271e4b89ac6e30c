package server

import "github.com/custos-dev/custos"

// identityInput is an identity as request bodies name one:
// {"type": "user_id", "value": "u-42"}.
type identityInput struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// parse returns the identifier; a missing type or value is refused when
// required, and left to the domain otherwise.
func (in identityInput) parse(required bool) (custos.Identifier, error) {
	if in.Type == "" {
		if required || in.Value != "" {
			return custos.Identifier{}, custos.Errorf(custos.Invalid, "identity: type and value are required, e.g. {\"type\": \"user_id\", \"value\": \"u-42\"}")
		}
		return custos.Identifier{}, nil
	}
	typ, err := custos.ParseIdentifierType(in.Type)
	if err != nil {
		return custos.Identifier{}, custos.Errorf(custos.Invalid, "identity.type: %s", custos.ErrorMessage(err))
	}
	if required && in.Value == "" {
		return custos.Identifier{}, custos.Errorf(custos.Invalid, "identity.value is required")
	}
	return custos.Identifier{Type: typ, Value: in.Value}, nil
}
