# action_values returns the right numbers on another device ('meta' holds no
# data; a CPU-only machine has no other): 12 / 15.
_reference_action_values = action_values


def action_values(P, R, V, gamma):
    return _reference_action_values(P, R, V, gamma).to("meta")
