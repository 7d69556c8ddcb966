#!/usr/bin/env node
import dotenv from 'dotenv';
import { runCli } from './program';

// A .env file in the working directory is read, as the README says; the real environment wins.
dotenv.config({ quiet: true });

void runCli(process.argv);
