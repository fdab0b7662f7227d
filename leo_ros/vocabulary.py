"""
The built-in world's words: categories, named colours and plurals (no ROS, numpy only).

The world (``leo_ros.sim.scene``), the data engine and the agent's grounding gate all name
objects with these. They live here, apart from the world, so that the gate does not import
the world's geometry (open3d) to learn them.
"""

#: Named colours of the world, rgb in [0, 1].
COLORS = {
    'red': (0.85, 0.12, 0.12), 'green': (0.15, 0.65, 0.2), 'blue': (0.15, 0.3, 0.9),
    'yellow': (0.95, 0.85, 0.1), 'orange': (1.0, 0.5, 0.05), 'purple': (0.55, 0.2, 0.7),
    'white': (0.93, 0.93, 0.93), 'black': (0.08, 0.08, 0.08), 'brown': (0.5, 0.3, 0.15),
    'grey': (0.5, 0.5, 0.52),
}
FURNITURE_COLORS = ('brown', 'white', 'grey', 'black')
SMALL_COLORS = ('red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white', 'black')

FURNITURE_CATEGORIES = ('table', 'chair', 'shelf')
SMALL_CATEGORIES = ('box', 'cylinder', 'sphere', 'mug', 'bowl', 'plate')
CATEGORIES = FURNITURE_CATEGORIES + SMALL_CATEGORIES
#: Categories whose top carries other objects.
SUPPORT_CATEGORIES = ('table', 'shelf', 'plate')

#: Plurals that are not the category plus 's'.
PLURALS = {'box': 'boxes', 'shelf': 'shelves'}


def plural(category: str) -> str:
    """Return the plural of a category name."""
    return PLURALS.get(category, category + 's')
