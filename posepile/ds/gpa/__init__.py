"""GPA (Geometric Pose Affordance): the recipe in main.py, the steps in main.sh."""
