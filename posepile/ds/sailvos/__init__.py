"""SAIL-VOS 3D (GTA-V): the recipe in main.py, the steps in main.sh."""
