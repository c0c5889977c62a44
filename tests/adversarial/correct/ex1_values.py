# The reference itself: 15 / 15.
