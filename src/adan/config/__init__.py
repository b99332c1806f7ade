"""Rules about settings that hold whatever the components: which keys define an experiment and
may not change on resume (``adan.config.resume``). The typed settings themselves live beside
their components (``adan.<package>.schema``), gathered by ``adan.tasks.registry``."""
