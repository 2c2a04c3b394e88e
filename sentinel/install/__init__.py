"""Installing sentinel on a machine: the site layout that ``sentinel init`` writes."""
