# The two commands of the README, and a few helpers.
.PHONY: dev test services-start services-stop lint help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

dev:  ## install, start services, migrate, run everything on http://localhost:8000
	infra/dev.sh

test:  ## install, start services, run the whole test suite
	infra/test.sh $(ARGS)

services-start:  ## start Postgres, Redis and Kafka on loopback
	infra/services.sh install && infra/services.sh start

services-stop:  ## stop them
	infra/services.sh stop

lint:  ## ruff over the packages
	python3 -m ruff check tinytrail collector streams api tests bench
