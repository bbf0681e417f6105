import sys

sys.exit("usage: python -I -m course.grading.run_check CHECK --submission FOLDER")
