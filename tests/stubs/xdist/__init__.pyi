# The parts of pytest-xdist the suite uses (it ships no type information).
