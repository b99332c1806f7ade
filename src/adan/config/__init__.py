"""Rules about settings as a whole, apart from any component: which keys define an experiment
and may not change on resume (``adan.config.resume``), and which keys moved and where to
(``adan.config.deprecations``). The typed settings live beside their components
(``adan.<package>.schema``), gathered by ``adan.tasks.registry``."""
