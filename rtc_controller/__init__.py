"""Real-Time Chunking deployment of a pi0.5 flow policy on a dual-arm Flexiv rig."""
