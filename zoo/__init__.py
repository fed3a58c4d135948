"""Model zoo: named pretrained teachers and students (installed as ``asma.zoo``)."""
